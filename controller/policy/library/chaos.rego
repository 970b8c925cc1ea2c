# Package chaos: safety checks on ChaosExperiment resources.
#
# Practice: the Principles of Chaos Engineering. An experiment states the
# steady state it expects to hold (measured by probes), limits its blast
# radius, knows how to roll every fault back, and does not touch production
# unless someone has opted that experiment in explicitly.
package chaos

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")

# The label that opts an experiment into targeting a production service.
allow_production_label := "modelplane.io/allow-production"

# blast_radius_required: an experiment bounds how much it may break.
deny_blast_radius_required contains msg if {
	input.kind == "ChaosExperiment"
	not has_blast_radius
	msg := sprintf(
		"ChaosExperiment %s has no blast radius; set spec.blastRadius.maxReplicas and spec.blastRadius.maxTrafficPercent to bound what a fault may touch",
		[resource_name],
	)
}

# True when spec.blastRadius is a non-empty object.
has_blast_radius if {
	br := input.spec.blastRadius
	is_object(br)
	count(br) > 0
}

# steady_state_required: an experiment measures its steady-state hypothesis with at least one probe.
deny_steady_state_required contains msg if {
	input.kind == "ChaosExperiment"
	count(object.get(input, ["spec", "steadyState", "probes"], [])) == 0
	msg := sprintf(
		"ChaosExperiment %s has no steady-state probes; add spec.steadyState with at least one probe (e.g. latencyP99 <= the service's SLO) so the experiment can tell success from damage",
		[resource_name],
	)
}

# rollbacks_required: an experiment declares at least one rollback action.
deny_rollbacks_required contains msg if {
	input.kind == "ChaosExperiment"
	count(object.get(input, ["spec", "rollbacks"], [])) == 0
	msg := sprintf(
		"ChaosExperiment %s declares no rollbacks; add spec.rollbacks (e.g. restore-replicas, remove-latency) to undo each fault",
		[resource_name],
	)
}

# non_production_target: an experiment targets a production service only when labelled modelplane.io/allow-production: "true".
deny_non_production_target contains msg if {
	input.kind == "ChaosExperiment"
	service_name := input.spec.target.service
	service := data.modelplane.resources.InferenceService[service_name]
	object.get(service, ["spec", "environment"], "development") == "production"
	not input.metadata.labels[allow_production_label] == "true"
	msg := sprintf(
		"ChaosExperiment %s targets InferenceService %s, which runs in production; target a staging service, or label the experiment %s: \"true\" once production chaos is approved",
		[resource_name, service_name, allow_production_label],
	)
}
