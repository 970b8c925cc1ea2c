# Package datasets: data-governance checks on Dataset resources.
#
# Practice: GDPR-style data governance. Personal data needs a lawful basis for
# processing (Art. 6) and a storage limit (Art. 5(1)(e)); every dataset, personal
# or not, states how long it is kept so that copies do not live forever; and
# personal data is never published under a "public" classification.
# Waive a rule for one dataset with a PolicyException naming e.g.
# `datasets.retention_required`.
package datasets

# Governance block of the dataset under review ({} when absent).
governance := object.get(input, ["spec", "governance"], {})

# True when the dataset declares that it holds personal data.
is_pii if governance.pii == true

# True when field f of the governance block is a non-blank string.
declared(f) if {
	v := governance[f]
	is_string(v)
	trim_space(v) != ""
}

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")

# pii_consent_basis: a dataset with personal data declares its lawful basis for processing.
deny_pii_consent_basis contains msg if {
	input.kind == "Dataset"
	is_pii
	not declared("consentBasis")
	msg := sprintf(
		"Dataset %s holds personal data (governance.pii: true) but declares no lawful basis; set spec.governance.consentBasis (consent, contract, legal-obligation, vital-interests, public-task or legitimate-interests)",
		[resource_name],
	)
}

# pii_retention: a dataset with personal data declares how long it may be kept.
deny_pii_retention contains msg if {
	input.kind == "Dataset"
	is_pii
	not declared("retention")
	msg := sprintf(
		"Dataset %s holds personal data (governance.pii: true) but has no retention period; set spec.governance.retention (e.g. 365d) so the data is deleted when it is no longer needed",
		[resource_name],
	)
}

# retention_required: every dataset declares a retention period (waivable per dataset).
deny_retention_required contains msg if {
	input.kind == "Dataset"
	not declared("retention")
	msg := sprintf(
		"Dataset %s declares no retention period; set spec.governance.retention (e.g. 365d), or file a PolicyException for datasets.retention_required if no retention clock applies",
		[resource_name],
	)
}

# pii_not_public: a dataset with personal data may not be classified public.
deny_pii_not_public contains msg if {
	input.kind == "Dataset"
	is_pii
	governance.classification == "public"
	msg := sprintf(
		"Dataset %s holds personal data (governance.pii: true) but is classified public; classify it confidential or restricted, or remove the personal data",
		[resource_name],
	)
}
