# Package access: runtime decision for calls to a served model.
#
# Practice: deny-by-default attribute-based access control at the model
# gateway. A call is allowed only when every condition holds: the path is
# /models/<env>/<service>/<action>..., the action matches the HTTP method
# (POST predict, GET artifacts), the InferenceService exists and runs in the
# environment named by the path (so a staging URL cannot reach a production
# service), the caller is in one of the service's access.groups, and callers
# present consent when the service requires it or its model was trained on
# personal data (GDPR). `reasons` explains every failed condition.
#
# Input: {"method": "POST", "path": "/models/production/x/predict",
#         "user": "alice", "groups": ["clinicians"], "consent": true}
package access

default allow := false

# allow: every condition below holds.
allow if {
	path_valid
	action_valid
	service_exists
	environment_matches
	group_shared
	consent_satisfied
}

# The path split on "/": ["", "models", env, name, action, ...].
segments := split(input.path, "/") if is_string(input.path)

env := segments[2]

name := segments[3]

action := segments[4]

method := upper(input.method) if is_string(input.method)

# True when the path is /models/<env>/<name>/<action>[/...] with no empty, "." or ".." segments.
path_valid if {
	count(segments) >= 5
	segments[0] == ""
	segments[1] == "models"
	every s in array.slice(segments, 1, count(segments)) {
		segment_ok(s)
	}
}

# A path segment that names something: not empty, "." or "..".
segment_ok(s) if {
	s != ""
	not s in {".", ".."}
}

# The action and method pairs that are allowed; predict has no sub-path.
action_valid if {
	action == "predict"
	method == "POST"
	count(segments) == 5
}

action_valid if {
	action == "artifacts"
	method == "GET"
}

# The InferenceService named by the path.
service := data.modelplane.resources.InferenceService[name] if path_valid

service_exists if service

# The service's environment ("development" when omitted).
service_environment := object.get(service, ["spec", "environment"], "development")

environment_matches if service_environment == env

service_groups := object.get(service, ["spec", "access", "groups"], [])

caller_groups := g if {
	g := input.groups
	is_array(g)
} else := []

group_shared if {
	some g in caller_groups
	g in service_groups
}

# Consent is required when the service says so or its model's dataset holds personal data.
consent_required if service.spec.access.requireConsent == true

consent_required if {
	model := data.modelplane.resources.Model[service.spec.model.name]
	data.modelplane.resources.Dataset[model.spec.dataset].spec.governance.pii == true
}

consent_satisfied if not consent_required

consent_satisfied if input.consent == true

# reasons: one message per failed condition (conditions that need the service are checked only once it is found).
reasons contains msg if {
	not path_valid
	msg := sprintf(
		"path %v is not of the form /models/<environment>/<service>/<action>",
		[object.get(input, "path", "<missing>")],
	)
}

reasons contains msg if {
	path_valid
	not action_valid
	msg := sprintf(
		"%v %v is not allowed: use POST /models/<environment>/<service>/predict or GET /models/<environment>/<service>/artifacts/...",
		[object.get(input, "method", "<missing method>"), input.path],
	)
}

reasons contains msg if {
	path_valid
	not service_exists
	msg := sprintf("no InferenceService named %v", [name])
}

reasons contains msg if {
	service_exists
	not environment_matches
	msg := sprintf(
		"InferenceService %v runs in %v, not in %v as the path says",
		[name, service_environment, env],
	)
}

reasons contains msg if {
	service_exists
	not group_shared
	msg := sprintf(
		"user %v (groups %v) is in none of the groups allowed to call %v: %v",
		[object.get(input, "user", "<anonymous>"), caller_groups, name, service_groups],
	)
}

reasons contains msg if {
	service_exists
	not consent_satisfied
	msg := sprintf("InferenceService %v requires the caller's consent; send consent: true", [name])
}
