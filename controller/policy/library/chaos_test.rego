# Tests for package chaos.
package chaos_test

import data.chaos

experiment := {
	"apiVersion": "modelplane.io/v1alpha1",
	"kind": "ChaosExperiment",
	"metadata": {"name": "api-replica-kill", "labels": {"owner": "ml-platform"}},
	"spec": {
		"target": {"service": "api"},
		"steadyState": {"title": "answers in time", "probes": [{"name": "p99", "metric": "latencyP99", "threshold": 0.05}]},
		"faults": [{"type": "kill-replica", "count": 1}],
		"blastRadius": {"maxReplicas": 1, "maxTrafficPercent": 10},
		"rollbacks": [{"action": "restore-replicas"}],
	},
}

services_in(env) := {"resources": {"InferenceService": {"api": {"kind": "InferenceService", "metadata": {"name": "api"}, "spec": {"environment": env}}}}}

all_denies := chaos.deny_blast_radius_required
	| chaos.deny_steady_state_required
	| chaos.deny_rollbacks_required
	| chaos.deny_non_production_target

test_complete_experiment_on_staging_passes if {
	count(all_denies) == 0 with input as experiment with data.modelplane as services_in("staging")
}

# blast_radius_required

test_blast_radius_required_fails_when_absent if {
	msgs := chaos.deny_blast_radius_required with input as json.remove(experiment, ["spec/blastRadius"])
	count(msgs) == 1
	some msg in msgs
	contains(msg, "ChaosExperiment api-replica-kill")
}

test_blast_radius_required_fails_when_empty if {
	exp := json.patch(experiment, [{"op": "replace", "path": "/spec/blastRadius", "value": {}}])
	count(chaos.deny_blast_radius_required) == 1 with input as exp
}

test_blast_radius_required_passes_when_set if {
	count(chaos.deny_blast_radius_required) == 0 with input as experiment
}

# steady_state_required

test_steady_state_required_fails_when_absent if {
	count(chaos.deny_steady_state_required) == 1 with input as json.remove(experiment, ["spec/steadyState"])
}

test_steady_state_required_fails_without_probes if {
	exp := json.patch(experiment, [{"op": "replace", "path": "/spec/steadyState/probes", "value": []}])
	count(chaos.deny_steady_state_required) == 1 with input as exp
}

test_steady_state_required_passes_with_probe if {
	count(chaos.deny_steady_state_required) == 0 with input as experiment
}

# rollbacks_required

test_rollbacks_required_fails_when_absent if {
	count(chaos.deny_rollbacks_required) == 1 with input as json.remove(experiment, ["spec/rollbacks"])
}

test_rollbacks_required_fails_when_empty if {
	exp := json.patch(experiment, [{"op": "replace", "path": "/spec/rollbacks", "value": []}])
	count(chaos.deny_rollbacks_required) == 1 with input as exp
}

test_rollbacks_required_passes_with_rollback if {
	count(chaos.deny_rollbacks_required) == 0 with input as experiment
}

# non_production_target

test_non_production_target_fails_on_production_service if {
	msgs := chaos.deny_non_production_target with input as experiment with data.modelplane as services_in("production")
	count(msgs) == 1
	some msg in msgs
	contains(msg, "modelplane.io/allow-production")
}

test_non_production_target_passes_with_opt_in_label if {
	exp := json.patch(experiment, [{"op": "add", "path": "/metadata/labels/modelplane.io~1allow-production", "value": "true"}])
	count(chaos.deny_non_production_target) == 0 with input as exp with data.modelplane as services_in("production")
}

test_non_production_target_label_must_be_true if {
	exp := json.patch(experiment, [{"op": "add", "path": "/metadata/labels/modelplane.io~1allow-production", "value": "false"}])
	count(chaos.deny_non_production_target) == 1 with input as exp with data.modelplane as services_in("production")
}

test_non_production_target_passes_on_default_environment if {
	svcs := {"resources": {"InferenceService": {"api": {"kind": "InferenceService", "metadata": {"name": "api"}, "spec": {}}}}}
	count(chaos.deny_non_production_target) == 0 with input as experiment with data.modelplane as svcs
}

test_non_production_target_tolerates_unknown_service if {
	count(chaos.deny_non_production_target) == 0 with input as experiment with data.modelplane as {}
}

test_rules_ignore_other_kinds if {
	count(all_denies) == 0 with input as {"kind": "InferenceService", "metadata": {"name": "api"}, "spec": {}}
}
