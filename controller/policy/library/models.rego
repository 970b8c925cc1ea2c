# Package models: release-readiness checks on Model resources.
#
# Practice: gated model promotion (MLOps "quality gates" and the four-eyes
# principle). A model that may reach Production is evaluated against explicit
# metric gates; models for clinical use (label domain: medical) meet a higher
# discrimination bar and need two distinct approvers, as in regulated
# software-as-a-medical-device release processes. Search budgets are kept
# in check so that training cost stays predictable.
package models

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")

# The production promotion block, when the model may go to Production.
production := p if {
	p := input.spec.promotion.production
	p != null
}

# True when the model may be promoted to Production.
goes_to_production if production

# True when the model is labelled domain: medical.
is_medical if input.metadata.labels.domain == "medical"

# The declared gates ([] when absent).
gates := object.get(input, ["spec", "gates"], [])

# The lowest roc_auc threshold the medical rule accepts.
medical_min_auc := 0.92

# Operators under which a threshold is a lower bound.
lower_bound_operators := {">=", ">"}

# True when some roc_auc gate enforces roc_auc >= medical_min_auc.
has_strong_auc_gate if {
	some gate in gates
	gate.metric == "roc_auc"
	gate.operator in lower_bound_operators
	is_number(gate.threshold)
	gate.threshold >= medical_min_auc
}

# The roc_auc gates as "<operator> <threshold>" strings, for messages.
auc_gates := [sprintf("%v %v", [object.get(g, "operator", "?"), object.get(g, "threshold", "?")]) |
	some g in gates
	g.metric == "roc_auc"
]

# gates_required: a model that may reach Production declares at least one metric gate.
deny_gates_required contains msg if {
	input.kind == "Model"
	goes_to_production
	count(gates) == 0
	msg := sprintf(
		"Model %s can be promoted to Production (spec.promotion.production is set) but declares no gates; add at least one entry to spec.gates, e.g. {metric: roc_auc, operator: \">=\", threshold: 0.9}",
		[resource_name],
	)
}

# medical_min_auc: a medical model has a roc_auc gate of at least 0.92 (no gate: fails).
deny_medical_min_auc contains msg if {
	input.kind == "Model"
	is_medical
	not has_strong_auc_gate
	count(auc_gates) == 0
	msg := sprintf(
		"Model %s is labelled domain=medical but has no roc_auc gate; medical models need a gate {metric: roc_auc, operator: \">=\", threshold: %v} or stricter",
		[resource_name, medical_min_auc],
	)
}

deny_medical_min_auc contains msg if {
	input.kind == "Model"
	is_medical
	not has_strong_auc_gate
	count(auc_gates) > 0
	msg := sprintf(
		"Model %s is labelled domain=medical but its roc_auc gate is %v; medical models need roc_auc >= %v (operator \">=\" or \">\")",
		[resource_name, concat(", ", auc_gates), medical_min_auc],
	)
}

# medical_two_approvals: a medical model going to Production needs two or more approvers.
deny_medical_two_approvals contains msg if {
	input.kind == "Model"
	is_medical
	goes_to_production
	approvals := object.get(production, "approvals", 1)
	approvals < 2
	msg := sprintf(
		"Model %s is labelled domain=medical and can reach Production with %v approval(s); set spec.promotion.production.approvals to 2 or more",
		[resource_name, approvals],
	)
}

# The most search trials a model may run without a warning.
max_search_trials := 200

# search_trials_budget (warn): a hyper-parameter search of more than 200 trials is costly.
warn_search_trials_budget contains msg if {
	input.kind == "Model"
	trials := input.spec.search.trials
	is_number(trials)
	trials > max_search_trials
	msg := sprintf(
		"Model %s runs %v search trials (more than %v); lower spec.search.trials or narrow spec.search.space unless the compute budget allows it",
		[resource_name, trials, max_search_trials],
	)
}
