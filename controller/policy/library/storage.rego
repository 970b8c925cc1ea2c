# Package storage: where model artifacts may live.
#
# Practice: environment isolation of artifact stores. Production serves only
# from production buckets (with their own access control, retention and
# backups), staging from staging buckets, and only development may use local
# files. This stops a production service from loading an artifact that anyone
# with development access could have overwritten.
#
# The allowed prefixes per environment default to default_allowed_prefixes
# below; data.modelplane.config.storage.allowed_prefixes overrides them per
# environment (an environment it does not name keeps its default).
package storage

default_allowed_prefixes := {
	"production": ["s3://ml-models-prod/", "gs://ml-models-prod/"],
	"staging": ["s3://ml-models-staging/", "gs://ml-models-staging/"],
	"development": ["s3://ml-models-dev/", "gs://ml-models-dev/", "file://"],
}

# The allowed prefixes for environment env: the configured list, else the default one.
allowed_prefixes(env) := prefixes if {
	prefixes := data.modelplane.config.storage.allowed_prefixes[env]
} else := prefixes if {
	prefixes := default_allowed_prefixes[env]
} else := []

resource_name := object.get(input, ["metadata", "name"], "<unnamed>")

# The artifact URI of the resource under review, its field path and its environment.
artifact := {"uri": uri, "field": "spec.artifactUri", "env": env} if {
	input.kind == "Model"
	uri := input.spec.artifactUri
	env := object.get(input, ["metadata", "labels", "environment"], "development")
}

artifact := {"uri": uri, "field": "spec.storageUri", "env": env} if {
	input.kind == "InferenceService"
	uri := input.spec.storageUri
	env := object.get(input, ["spec", "environment"], "development")
}

# True when the artifact URI starts with one of the allowed prefixes of its environment.
uri_allowed if {
	is_string(artifact.uri)
	some prefix in allowed_prefixes(artifact.env)
	startswith(artifact.uri, prefix)
}

# What to do, for the message: the allowed prefixes, or that the environment has none.
advice := sprintf("use a location under one of %v, or omit the field to use the local store", [allowed]) if {
	allowed := allowed_prefixes(artifact.env)
	count(allowed) > 0
} else := sprintf(
	"environment %v has no allowed storage locations; use one of %v (or configure data.modelplane.config.storage.allowed_prefixes)",
	[artifact.env, sort(object.keys(default_allowed_prefixes))],
)

# allowed_prefix: a Model's artifactUri / an InferenceService's storageUri lies under an allowed prefix for its environment.
deny_allowed_prefix contains msg if {
	input.kind in {"Model", "InferenceService"}
	artifact.uri != null
	not uri_allowed
	msg := sprintf(
		"%s %s stores artifacts at %v (%s), which is not allowed for environment %v; %s",
		[input.kind, resource_name, artifact.uri, artifact.field, artifact.env, advice],
	)
}
