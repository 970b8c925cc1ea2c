# Package services: production-readiness checks on InferenceService resources.
#
# Practice: SRE production-readiness reviews and progressive delivery. A
# service with a latency SLO keeps warm capacity (no scale-to-zero cold
# starts); a canary rollout is guarded by automated analysis and ends at full
# traffic; production endpoints say who may call them; and a model trained on
# personal data is only served to callers who present consent (GDPR).
package services

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")

# The serving environment ("development" when omitted, as in the schema).
environment := object.get(input, ["spec", "environment"], "development")

# True when the service runs in production.
is_production if environment == "production"

# Replica bounds with the schema defaults (min 1, max 1) filled in.
min_replicas := object.get(input, ["spec", "replicas", "min"], 1)

max_replicas := object.get(input, ["spec", "replicas", "max"], 1)

# The canary block, when a canary rollout is declared.
canary := c if {
	c := input.spec.canary
	c != null
}

# slo_no_scale_to_zero: a production service with a latency SLO keeps at least one replica warm.
deny_slo_no_scale_to_zero contains msg if {
	input.kind == "InferenceService"
	is_production
	latency := input.spec.slo.latencyP99
	latency != null
	min_replicas == 0
	msg := sprintf(
		"InferenceService %s promises latencyP99 %v in production but may scale to zero (spec.replicas.min: 0); cold starts break the SLO, so set spec.replicas.min to 1 or more",
		[resource_name, latency],
	)
}

# canary_ends_at_100: a canary rollout's last step sends 100% of traffic.
deny_canary_ends_at_100 contains msg if {
	input.kind == "InferenceService"
	steps := object.get(canary, "steps", [])
	count(steps) == 0
	msg := sprintf(
		"InferenceService %s declares a canary with no steps; list the traffic percentages in spec.canary.steps, ending with 100 (e.g. [10, 50, 100])",
		[resource_name],
	)
}

deny_canary_ends_at_100 contains msg if {
	input.kind == "InferenceService"
	steps := object.get(canary, "steps", [])
	count(steps) > 0
	last := steps[count(steps) - 1]
	last != 100
	msg := sprintf(
		"InferenceService %s's canary ends at %v%% of traffic (spec.canary.steps: %v), so the rollout never completes; make the last step 100",
		[resource_name, last, steps],
	)
}

# canary_analysis_required: a canary rollout declares the analysis that decides each step.
deny_canary_analysis_required contains msg if {
	input.kind == "InferenceService"
	canary
	not has_canary_analysis
	msg := sprintf(
		"InferenceService %s declares a canary without spec.canary.analysis, so nothing stops a bad step; add analysis (e.g. maxLatencyP99, maxErrorRate, minRequests)",
		[resource_name],
	)
}

# True when the canary has a non-null analysis block.
has_canary_analysis if {
	a := canary.analysis
	a != null
}

# production_access_groups: a production service names the groups allowed to call it.
deny_production_access_groups contains msg if {
	input.kind == "InferenceService"
	is_production
	count(object.get(input, ["spec", "access", "groups"], [])) == 0
	msg := sprintf(
		"InferenceService %s runs in production but declares no access groups, so no one can call it; list the allowed callers in spec.access.groups",
		[resource_name],
	)
}

# The Dataset the served model was trained on, looked up in the revision's resources.
served_dataset := ds if {
	model := data.modelplane.resources.Model[input.spec.model.name]
	ds := data.modelplane.resources.Dataset[model.spec.dataset]
}

# consent_required_for_pii: a service whose model was trained on personal data requires caller consent.
deny_consent_required_for_pii contains msg if {
	input.kind == "InferenceService"
	served_dataset.spec.governance.pii == true
	not input.spec.access.requireConsent == true
	msg := sprintf(
		"InferenceService %s serves model %s, trained on Dataset %s which holds personal data (governance.pii: true); set spec.access.requireConsent: true",
		[resource_name, input.spec.model.name, served_dataset.metadata.name],
	)
}

# single_replica_production (warn): a production service that can never run more than one replica has no redundancy.
warn_single_replica_production contains msg if {
	input.kind == "InferenceService"
	is_production
	max_replicas == 1
	msg := sprintf(
		"InferenceService %s runs in production with at most one replica (spec.replicas.max: 1), so one pod failure is an outage; set spec.replicas.max to 2 or more",
		[resource_name],
	)
}
