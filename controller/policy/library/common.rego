# Package common: checks that apply to every kind of resource.
#
# Practice: every deployed thing has a named owning team (the Kubernetes
# "owner" label convention, service catalogues, on-call routing). A resource
# without an owner cannot be routed an alert, a failed gate or a waiver
# request, so ownership is required at review time rather than discovered
# during an incident.
package common

# The kinds that are built, trained, served or run, and so need an owner.
owned_kinds := {"Dataset", "Model", "InferenceService", "ChaosExperiment"}

# owner_label: every Dataset, Model, InferenceService and ChaosExperiment names its owning team.
deny_owner_label contains msg if {
	input.kind in owned_kinds
	not has_owner
	msg := sprintf(
		"%s %s has no owner: set metadata.labels.owner to the team that answers for it (e.g. owner: ml-platform)",
		[input.kind, resource_name],
	)
}

# True when metadata.labels.owner is a non-blank string.
has_owner if {
	owner := input.metadata.labels.owner
	is_string(owner)
	trim_space(owner) != ""
}

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")
