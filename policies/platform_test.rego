# Tests for package platform.
package platform_test

import data.platform

production_model := {
	"apiVersion": "modelplane.io/v1alpha1",
	"kind": "Model",
	"metadata": {"name": "churn", "labels": {"owner": "ml-platform"}},
	"spec": {
		"promotion": {"production": {"approvals": 1}},
		"card": {"owners": [{"name": "ML Platform Team", "contact": "ml-platform@example.org"}]},
	},
}

without_contact := json.patch(production_model, [{"op": "replace", "path": "/spec/card/owners", "value": [{"name": "Someone"}]}])

test_owner_with_contact_passes if {
	count(platform.violation_card_owner_contact) == 0 with input as production_model
}

test_owner_without_contact_is_denied if {
	some v in platform.violation_card_owner_contact with input as without_contact
	v.field == "spec.card.owners"
}

test_blank_contact_is_denied if {
	blank := json.patch(production_model, [{"op": "replace", "path": "/spec/card/owners/0/contact", "value": "  "}])
	count(platform.violation_card_owner_contact) == 1 with input as blank
}

test_model_without_production_is_not_judged if {
	staging_only := json.remove(without_contact, ["spec/promotion/production"])
	count(platform.violation_card_owner_contact) == 0 with input as staging_only
}
