# Tests for package services.
package services_test

import data.services

prod_service := {
	"apiVersion": "modelplane.io/v1alpha1",
	"kind": "InferenceService",
	"metadata": {"name": "tumour-api", "labels": {"owner": "ml-platform"}},
	"spec": {
		"model": {"name": "tumour-classifier", "stage": "Production"},
		"environment": "production",
		"replicas": {"min": 1, "max": 3},
		"slo": {"latencyP99": "50ms", "errorRate": 1},
		"canary": {"steps": [10, 50, 100], "analysis": {"maxLatencyP99": "50ms", "maxErrorRate": 1}},
		"access": {"groups": ["clinicians"], "requireConsent": true},
	},
}

set_field(obj, path, value) := json.patch(obj, [{"op": "add", "path": path, "value": value}])

resources(pii) := {"resources": {
	"Model": {"tumour-classifier": {"kind": "Model", "metadata": {"name": "tumour-classifier"}, "spec": {"dataset": "patients"}}},
	"Dataset": {"patients": {"kind": "Dataset", "metadata": {"name": "patients"}, "spec": {"governance": {"pii": pii}}}},
}}

all_denies := services.deny_slo_no_scale_to_zero
	| services.deny_canary_ends_at_100
	| services.deny_canary_analysis_required
	| services.deny_production_access_groups
	| services.deny_consent_required_for_pii

test_complete_production_service_passes if {
	count(all_denies) == 0 with input as prod_service with data.modelplane as resources(true)
	count(services.warn_single_replica_production) == 0 with input as prod_service
}

test_minimal_development_service_passes if {
	svc := {"kind": "InferenceService", "metadata": {"name": "dev"}, "spec": {"model": {"name": "m"}}}
	count(all_denies) == 0 with input as svc
	count(services.warn_single_replica_production) == 0 with input as svc
}

# slo_no_scale_to_zero

test_slo_no_scale_to_zero_fails_with_min_zero if {
	msgs := services.deny_slo_no_scale_to_zero with input as set_field(prod_service, "/spec/replicas/min", 0)
	count(msgs) == 1
	some msg in msgs
	contains(msg, "tumour-api")
	contains(msg, "50ms")
}

test_slo_no_scale_to_zero_passes_when_replicas_absent if {
	svc := json.remove(prod_service, ["spec/replicas"])
	count(services.deny_slo_no_scale_to_zero) == 0 with input as svc
}

test_slo_no_scale_to_zero_passes_without_latency_slo if {
	svc := json.remove(set_field(prod_service, "/spec/replicas/min", 0), ["spec/slo/latencyP99"])
	count(services.deny_slo_no_scale_to_zero) == 0 with input as svc
}

test_slo_no_scale_to_zero_passes_outside_production if {
	svc := set_field(set_field(prod_service, "/spec/replicas/min", 0), "/spec/environment", "staging")
	count(services.deny_slo_no_scale_to_zero) == 0 with input as svc
}

# canary_ends_at_100

test_canary_ends_at_100_fails_when_last_step_below_100 if {
	msgs := services.deny_canary_ends_at_100 with input as set_field(prod_service, "/spec/canary/steps", [10, 50])
	count(msgs) == 1
	some msg in msgs
	contains(msg, "ends at 50%")
}

test_canary_ends_at_100_fails_with_no_steps if {
	count(services.deny_canary_ends_at_100) == 1 with input as set_field(prod_service, "/spec/canary/steps", [])
	count(services.deny_canary_ends_at_100) == 1 with input as json.remove(prod_service, ["spec/canary/steps"])
}

test_canary_ends_at_100_passes_with_single_full_step if {
	count(services.deny_canary_ends_at_100) == 0 with input as set_field(prod_service, "/spec/canary/steps", [100])
}

test_canary_ends_at_100_passes_without_canary if {
	count(services.deny_canary_ends_at_100) == 0 with input as json.remove(prod_service, ["spec/canary"])
}

# canary_analysis_required

test_canary_analysis_required_fails_without_analysis if {
	msgs := services.deny_canary_analysis_required with input as json.remove(prod_service, ["spec/canary/analysis"])
	count(msgs) == 1
}

test_canary_analysis_required_passes_with_analysis if {
	count(services.deny_canary_analysis_required) == 0 with input as prod_service
}

test_canary_analysis_required_passes_without_canary if {
	count(services.deny_canary_analysis_required) == 0 with input as json.remove(prod_service, ["spec/canary"])
}

# production_access_groups

test_production_access_groups_fails_without_access if {
	msgs := services.deny_production_access_groups with input as json.remove(prod_service, ["spec/access"])
	count(msgs) == 1
	some msg in msgs
	contains(msg, "spec.access.groups")
}

test_production_access_groups_fails_with_empty_groups if {
	count(services.deny_production_access_groups) == 1 with input as set_field(prod_service, "/spec/access/groups", [])
}

test_production_access_groups_not_needed_in_staging if {
	svc := json.remove(set_field(prod_service, "/spec/environment", "staging"), ["spec/access"])
	count(services.deny_production_access_groups) == 0 with input as svc
}

# consent_required_for_pii

test_consent_required_for_pii_fails_without_consent if {
	svc := set_field(prod_service, "/spec/access/requireConsent", false)
	msgs := services.deny_consent_required_for_pii with input as svc with data.modelplane as resources(true)
	count(msgs) == 1
	some msg in msgs
	contains(msg, "Dataset patients")
}

test_consent_required_for_pii_fails_when_consent_absent if {
	svc := json.remove(prod_service, ["spec/access/requireConsent"])
	count(services.deny_consent_required_for_pii) == 1 with input as svc with data.modelplane as resources(true)
}

test_consent_required_for_pii_passes_with_consent if {
	count(services.deny_consent_required_for_pii) == 0 with input as prod_service with data.modelplane as resources(true)
}

test_consent_not_required_without_pii if {
	svc := json.remove(prod_service, ["spec/access/requireConsent"])
	count(services.deny_consent_required_for_pii) == 0 with input as svc with data.modelplane as resources(false)
}

test_consent_rule_tolerates_missing_model_or_context if {
	svc := json.remove(prod_service, ["spec/access/requireConsent"])
	count(services.deny_consent_required_for_pii) == 0 with input as svc with data.modelplane as {}
	count(services.deny_consent_required_for_pii) == 0 with input as svc with data.modelplane as {"resources": {"Model": {}}}
}

# single_replica_production (warn)

test_single_replica_production_warns_when_max_is_one if {
	count(services.warn_single_replica_production) == 1 with input as set_field(prod_service, "/spec/replicas/max", 1)
}

test_single_replica_production_warns_when_replicas_absent if {
	count(services.warn_single_replica_production) == 1 with input as json.remove(prod_service, ["spec/replicas"])
}

test_single_replica_production_quiet_in_development if {
	svc := set_field(set_field(prod_service, "/spec/replicas/max", 1), "/spec/environment", "development")
	count(services.warn_single_replica_production) == 0 with input as svc
}

test_rules_ignore_other_kinds if {
	m := set_field(json.remove(prod_service, ["spec/canary/analysis", "spec/access"]), "/kind", "Model")
	count(all_denies) == 0 with input as m with data.modelplane as resources(true)
}
