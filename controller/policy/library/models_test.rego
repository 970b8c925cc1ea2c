# Tests for package models.
package models_test

import data.models

medical_model := {
	"apiVersion": "modelplane.io/v1alpha1",
	"kind": "Model",
	"metadata": {"name": "tumour-classifier", "labels": {"owner": "ml-platform", "domain": "medical"}},
	"spec": {
		"dataset": "breast-cancer",
		"estimator": {"framework": "sklearn", "class": "sklearn.svm.SVC"},
		"search": {"metric": "roc_auc", "trials": 8, "space": {}},
		"gates": [
			{"metric": "roc_auc", "operator": ">=", "threshold": 0.92},
			{"metric": "recall", "operator": ">=", "threshold": 0.9},
		],
		"promotion": {"staging": {"automatic": true}, "production": {"approvals": 2}},
	},
}

plain_model := json.remove(medical_model, ["metadata/labels/domain"])

with_gates(m, gates) := json.patch(m, [{"op": "replace", "path": "/spec/gates", "value": gates}])

test_medical_model_passes_all_rules if {
	count(models.deny_gates_required) == 0 with input as medical_model
	count(models.deny_medical_min_auc) == 0 with input as medical_model
	count(models.deny_medical_two_approvals) == 0 with input as medical_model
	count(models.warn_search_trials_budget) == 0 with input as medical_model
}

# gates_required

test_gates_required_fails_with_production_and_no_gates if {
	msgs := models.deny_gates_required with input as json.remove(plain_model, ["spec/gates"])
	count(msgs) == 1
	some msg in msgs
	contains(msg, "Model tumour-classifier")
}

test_gates_required_fails_with_empty_gates if {
	count(models.deny_gates_required) == 1 with input as with_gates(plain_model, [])
}

test_gates_required_fails_with_empty_production_block if {
	m := json.patch(json.remove(plain_model, ["spec/gates"]), [{"op": "replace", "path": "/spec/promotion/production", "value": {}}])
	count(models.deny_gates_required) == 1 with input as m
}

test_gates_required_passes_without_production if {
	m := json.remove(plain_model, ["spec/gates", "spec/promotion/production"])
	count(models.deny_gates_required) == 0 with input as m
}

test_gates_required_passes_without_promotion if {
	m := json.remove(plain_model, ["spec/gates", "spec/promotion"])
	count(models.deny_gates_required) == 0 with input as m
}

# medical_min_auc

test_medical_min_auc_fails_with_low_threshold if {
	m := with_gates(medical_model, [{"metric": "roc_auc", "operator": ">=", "threshold": 0.8}])
	msgs := models.deny_medical_min_auc with input as m
	count(msgs) == 1
	some msg in msgs
	contains(msg, "domain=medical")
	contains(msg, "0.8")
}

test_medical_min_auc_fails_without_auc_gate if {
	m := with_gates(medical_model, [{"metric": "recall", "operator": ">=", "threshold": 0.95}])
	msgs := models.deny_medical_min_auc with input as m
	count(msgs) == 1
	some msg in msgs
	contains(msg, "no roc_auc gate")
}

test_medical_min_auc_fails_without_gates if {
	count(models.deny_medical_min_auc) == 1 with input as json.remove(medical_model, ["spec/gates"])
}

test_medical_min_auc_fails_with_upper_bound_operator if {
	m := with_gates(medical_model, [{"metric": "roc_auc", "operator": "<=", "threshold": 0.99}])
	count(models.deny_medical_min_auc) == 1 with input as m
}

test_medical_min_auc_passes_with_strict_operator_above_bar if {
	m := with_gates(medical_model, [{"metric": "roc_auc", "operator": ">", "threshold": 0.95}])
	count(models.deny_medical_min_auc) == 0 with input as m
}

test_medical_min_auc_passes_when_one_auc_gate_is_strong if {
	m := with_gates(medical_model, [
		{"metric": "roc_auc", "operator": ">=", "threshold": 0.5},
		{"metric": "roc_auc", "operator": ">=", "threshold": 0.93},
	])
	count(models.deny_medical_min_auc) == 0 with input as m
}

test_medical_min_auc_ignores_non_medical_models if {
	m := with_gates(plain_model, [{"metric": "roc_auc", "operator": ">=", "threshold": 0.6}])
	count(models.deny_medical_min_auc) == 0 with input as m
}

# medical_two_approvals

test_medical_two_approvals_fails_with_one_approval if {
	m := json.patch(medical_model, [{"op": "replace", "path": "/spec/promotion/production/approvals", "value": 1}])
	msgs := models.deny_medical_two_approvals with input as m
	count(msgs) == 1
	some msg in msgs
	contains(msg, "approvals to 2")
}

test_medical_two_approvals_fails_when_approvals_default_to_one if {
	m := json.remove(medical_model, ["spec/promotion/production/approvals"])
	count(models.deny_medical_two_approvals) == 1 with input as m
}

test_medical_two_approvals_passes_with_three if {
	m := json.patch(medical_model, [{"op": "replace", "path": "/spec/promotion/production/approvals", "value": 3}])
	count(models.deny_medical_two_approvals) == 0 with input as m
}

test_medical_two_approvals_passes_without_production if {
	m := json.remove(medical_model, ["spec/promotion/production"])
	count(models.deny_medical_two_approvals) == 0 with input as m
}

test_medical_two_approvals_ignores_non_medical_models if {
	m := json.patch(plain_model, [{"op": "replace", "path": "/spec/promotion/production/approvals", "value": 1}])
	count(models.deny_medical_two_approvals) == 0 with input as m
}

# search_trials_budget (warn)

test_search_trials_budget_warns_above_200 if {
	m := json.patch(plain_model, [{"op": "replace", "path": "/spec/search/trials", "value": 500}])
	count(models.warn_search_trials_budget) == 1 with input as m
}

test_search_trials_budget_quiet_at_200 if {
	m := json.patch(plain_model, [{"op": "replace", "path": "/spec/search/trials", "value": 200}])
	count(models.warn_search_trials_budget) == 0 with input as m
}

test_search_trials_budget_quiet_without_search if {
	count(models.warn_search_trials_budget) == 0 with input as json.remove(plain_model, ["spec/search"])
}

test_rules_ignore_other_kinds if {
	ds := json.patch(medical_model, [{"op": "replace", "path": "/kind", "value": "Dataset"}, {"op": "replace", "path": "/spec/gates", "value": []}])
	count(models.deny_gates_required) == 0 with input as ds
	count(models.deny_medical_min_auc) == 0 with input as ds
}
