# Tests for package storage.
package storage_test

import data.storage

model(uri, labels) := {
	"kind": "Model",
	"metadata": {"name": "churn", "labels": labels},
	"spec": {"dataset": "customers", "artifactUri": uri},
}

service(uri, env) := {
	"kind": "InferenceService",
	"metadata": {"name": "churn-api", "labels": {"owner": "growth"}},
	"spec": {"model": {"name": "churn"}, "environment": env, "storageUri": uri},
}

test_production_service_in_prod_bucket_passes if {
	count(storage.deny_allowed_prefix) == 0 with input as service("s3://ml-models-prod/churn/3", "production")
	count(storage.deny_allowed_prefix) == 0 with input as service("gs://ml-models-prod/churn/3", "production")
}

test_production_service_in_staging_bucket_fails if {
	msgs := storage.deny_allowed_prefix with input as service("s3://ml-models-staging/churn/3", "production")
	count(msgs) == 1
	some msg in msgs
	contains(msg, "InferenceService churn-api")
	contains(msg, "spec.storageUri")
	contains(msg, "s3://ml-models-prod/")
}

test_production_service_with_local_file_fails if {
	count(storage.deny_allowed_prefix) == 1 with input as service("file:///tmp/model.pkl", "production")
}

test_prefix_must_match_whole_bucket_name if {
	count(storage.deny_allowed_prefix) == 1 with input as service("s3://ml-models-prod-copy/churn", "production")
}

test_service_without_environment_is_development if {
	svc := json.remove(service("file:///data/model.pkl", "x"), ["spec/environment"])
	count(storage.deny_allowed_prefix) == 0 with input as svc
}

test_staging_service_in_staging_bucket_passes if {
	count(storage.deny_allowed_prefix) == 0 with input as service("gs://ml-models-staging/churn", "staging")
}

test_service_without_storage_uri_passes if {
	svc := json.remove(service("", "production"), ["spec/storageUri"])
	count(storage.deny_allowed_prefix) == 0 with input as svc
}

test_model_without_environment_label_is_development if {
	count(storage.deny_allowed_prefix) == 0 with input as model("file:///artifacts/churn", {"owner": "growth"})
	count(storage.deny_allowed_prefix) == 1 with input as model("s3://somewhere-else/churn", {"owner": "growth"})
}

test_model_in_production_uses_label if {
	labels := {"owner": "growth", "environment": "production"}
	count(storage.deny_allowed_prefix) == 0 with input as model("s3://ml-models-prod/churn", labels)
	msgs := storage.deny_allowed_prefix with input as model("s3://ml-models-dev/churn", labels)
	count(msgs) == 1
	some msg in msgs
	contains(msg, "spec.artifactUri")
}

test_model_without_artifact_uri_passes if {
	m := json.remove(model("", {"environment": "production"}), ["spec/artifactUri"])
	count(storage.deny_allowed_prefix) == 0 with input as m
}

test_unknown_environment_fails if {
	msgs := storage.deny_allowed_prefix with input as model("s3://ml-models-prod/x", {"environment": "qa"})
	count(msgs) == 1
	some msg in msgs
	contains(msg, "no allowed storage locations")
}

test_config_overrides_prefixes if {
	cfg := {"config": {"storage": {"allowed_prefixes": {"production": ["s3://acme-prod/"]}}}}
	count(storage.deny_allowed_prefix) == 0 with input as service("s3://acme-prod/churn", "production")
		with data.modelplane as cfg
	count(storage.deny_allowed_prefix) == 1 with input as service("s3://ml-models-prod/churn", "production")
		with data.modelplane as cfg
}

test_config_keeps_defaults_for_other_environments if {
	cfg := {"config": {"storage": {"allowed_prefixes": {"production": ["s3://acme-prod/"]}}}}
	count(storage.deny_allowed_prefix) == 0 with input as service("s3://ml-models-staging/churn", "staging")
		with data.modelplane as cfg
}

test_rule_ignores_other_kinds if {
	ds := {"kind": "Dataset", "metadata": {"name": "d"}, "spec": {"storageUri": "http://x", "artifactUri": "http://x"}}
	count(storage.deny_allowed_prefix) == 0 with input as ds
}
