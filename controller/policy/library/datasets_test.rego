# Tests for package datasets.
package datasets_test

import data.datasets

dataset(governance) := {
	"apiVersion": "modelplane.io/v1alpha1",
	"kind": "Dataset",
	"metadata": {"name": "patients", "labels": {"owner": "ml-platform"}},
	"spec": {"source": {"path": "data/patients.csv"}, "governance": governance},
}

complete_pii := {"pii": true, "consentBasis": "consent", "retention": "365d", "classification": "restricted"}

test_complete_pii_dataset_passes if {
	count(datasets.deny_pii_consent_basis) == 0 with input as dataset(complete_pii)
	count(datasets.deny_pii_retention) == 0 with input as dataset(complete_pii)
	count(datasets.deny_retention_required) == 0 with input as dataset(complete_pii)
	count(datasets.deny_pii_not_public) == 0 with input as dataset(complete_pii)
}

test_pii_consent_basis_fails_when_missing if {
	msgs := datasets.deny_pii_consent_basis with input as dataset(object.remove(complete_pii, ["consentBasis"]))
	count(msgs) == 1
	some msg in msgs
	contains(msg, "Dataset patients")
	contains(msg, "consentBasis")
}

test_pii_consent_basis_fails_when_blank if {
	count(datasets.deny_pii_consent_basis) == 1 with input as dataset(object.union(complete_pii, {"consentBasis": ""}))
}

test_pii_consent_basis_not_needed_without_pii if {
	count(datasets.deny_pii_consent_basis) == 0 with input as dataset({"pii": false, "retention": "30d"})
}

test_pii_retention_fails_when_missing if {
	msgs := datasets.deny_pii_retention with input as dataset(object.remove(complete_pii, ["retention"]))
	count(msgs) == 1
}

test_pii_retention_not_needed_without_pii if {
	count(datasets.deny_pii_retention) == 0 with input as dataset({"pii": false})
}

test_retention_required_passes_with_retention if {
	count(datasets.deny_retention_required) == 0 with input as dataset({"retention": "90d"})
}

test_retention_required_fails_without_retention if {
	count(datasets.deny_retention_required) == 1 with input as dataset({"pii": false, "classification": "public"})
}

test_retention_required_fails_without_governance if {
	msgs := datasets.deny_retention_required with input as {"kind": "Dataset", "metadata": {"name": "d"}, "spec": {}}
	count(msgs) == 1
	some msg in msgs
	contains(msg, "datasets.retention_required")
}

test_rules_ignore_other_kinds if {
	m := {"kind": "Model", "metadata": {"name": "m"}, "spec": {"governance": {"pii": true}}}
	count(datasets.deny_retention_required) == 0 with input as m
	count(datasets.deny_pii_retention) == 0 with input as m
	count(datasets.deny_pii_consent_basis) == 0 with input as m
}

test_pii_not_public_fails_for_public_pii if {
	count(datasets.deny_pii_not_public) == 1 with input as dataset(object.union(complete_pii, {"classification": "public"}))
}

test_pii_not_public_allows_public_non_pii if {
	count(datasets.deny_pii_not_public) == 0 with input as dataset({"pii": false, "classification": "public"})
}
