# Package platform: this platform's own rules, beside the built-in library.
#
# The built-in library (policy set entry "builtin") ships with modelplane and is
# used by reference; a platform repo keeps only what is its own here. This one:
# whoever answers for a model in Production can be reached, so the model card
# names an owner with a contact.
package platform

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")

# The card's owners that carry a contact.
contactable_owners := [o |
	some o in object.get(input, ["spec", "card", "owners"], [])
	is_string(object.get(o, "contact", null))
	trim_space(o.contact) != ""
]

# card_owner_contact: a model that may reach Production names an owner with a contact on its card.
violation_card_owner_contact contains {"msg": msg, "field": "spec.card.owners"} if {
	input.kind == "Model"
	object.get(input, ["spec", "promotion", "production"], null) != null
	count(contactable_owners) == 0
	msg := sprintf(
		"Model %s can reach Production but its card names no owner with a contact; add spec.card.owners: [{name: ..., contact: team@example.org}]",
		[resource_name],
	)
}
