# Tests for package access.
package access_test

import data.access

resources := {"resources": {
	"InferenceService": {
		"tumour-api": {"kind": "InferenceService", "metadata": {"name": "tumour-api"}, "spec": {
			"model": {"name": "tumour-classifier"},
			"environment": "production",
			"access": {"groups": ["clinicians", "ml-platform"], "requireConsent": true},
		}},
		"iris-api": {"kind": "InferenceService", "metadata": {"name": "iris-api"}, "spec": {
			"model": {"name": "iris-classifier"},
			"access": {"groups": ["data-science"]},
		}},
		"churn-api": {"kind": "InferenceService", "metadata": {"name": "churn-api"}, "spec": {
			"model": {"name": "churn"},
			"environment": "staging",
			"access": {"groups": ["growth"]},
		}},
		"open-api": {"kind": "InferenceService", "metadata": {"name": "open-api"}, "spec": {
			"model": {"name": "iris-classifier"},
			"environment": "staging",
		}},
	},
	"Model": {
		"tumour-classifier": {"kind": "Model", "metadata": {"name": "tumour-classifier"}, "spec": {"dataset": "breast-cancer"}},
		"iris-classifier": {"kind": "Model", "metadata": {"name": "iris-classifier"}, "spec": {"dataset": "iris"}},
		"churn": {"kind": "Model", "metadata": {"name": "churn"}, "spec": {"dataset": "customers"}},
	},
	"Dataset": {
		"breast-cancer": {"kind": "Dataset", "metadata": {"name": "breast-cancer"}, "spec": {"governance": {"pii": false}}},
		"iris": {"kind": "Dataset", "metadata": {"name": "iris"}, "spec": {}},
		"customers": {"kind": "Dataset", "metadata": {"name": "customers"}, "spec": {"governance": {"pii": true}}},
	},
}}

predict := {"method": "POST", "path": "/models/production/tumour-api/predict", "user": "alice", "groups": ["clinicians"], "consent": true}

with_req(changes) := object.union(predict, changes)

test_predict_allowed if {
	access.allow with input as predict with data.modelplane as resources
	count(access.reasons) == 0 with input as predict with data.modelplane as resources
}

test_artifacts_get_allowed if {
	req := with_req({"method": "GET", "path": "/models/production/tumour-api/artifacts/model.joblib"})
	access.allow with input as req with data.modelplane as resources
}

test_method_is_case_insensitive if {
	access.allow with input as with_req({"method": "post"}) with data.modelplane as resources
}

test_default_environment_is_development if {
	req := {"method": "POST", "path": "/models/development/iris-api/predict", "groups": ["data-science"]}
	access.allow with input as req with data.modelplane as resources
}

test_denied_without_data if {
	not access.allow with input as predict with data.modelplane as {}
	access.reasons == {"no InferenceService named tumour-api"} with input as predict with data.modelplane as {}
}

test_environment_mismatch_denied if {
	req := with_req({"path": "/models/staging/tumour-api/predict"})
	not access.allow with input as req with data.modelplane as resources
	access.reasons == {"InferenceService tumour-api runs in production, not in staging as the path says"} with input as req
		with data.modelplane as resources
}

test_environment_mismatch_with_default_environment if {
	req := {"method": "POST", "path": "/models/production/iris-api/predict", "groups": ["data-science"]}
	not access.allow with input as req with data.modelplane as resources
	count(access.reasons) == 1 with input as req with data.modelplane as resources
}

test_missing_consent_denied if {
	req := object.remove(predict, ["consent"])
	not access.allow with input as req with data.modelplane as resources
	access.reasons == {"InferenceService tumour-api requires the caller's consent; send consent: true"} with input as req
		with data.modelplane as resources
}

test_consent_false_denied if {
	not access.allow with input as with_req({"consent": false}) with data.modelplane as resources
}

test_pii_dataset_requires_consent if {
	req := {"method": "POST", "path": "/models/staging/churn-api/predict", "user": "bob", "groups": ["growth"]}
	not access.allow with input as req with data.modelplane as resources
	access.reasons == {"InferenceService churn-api requires the caller's consent; send consent: true"} with input as req
		with data.modelplane as resources
	access.allow with input as object.union(req, {"consent": true}) with data.modelplane as resources
}

test_consent_not_needed_without_pii_or_flag if {
	req := {"method": "POST", "path": "/models/development/iris-api/predict", "groups": ["data-science"], "consent": false}
	access.allow with input as req with data.modelplane as resources
}

test_no_shared_group_denied if {
	req := with_req({"groups": ["marketing"]})
	not access.allow with input as req with data.modelplane as resources
	msgs := access.reasons with input as req with data.modelplane as resources
	count(msgs) == 1
	some msg in msgs
	contains(msg, "none of the groups")
}

test_missing_groups_denied if {
	req := object.remove(predict, ["groups"])
	not access.allow with input as req with data.modelplane as resources
}

test_service_without_access_groups_denies_everyone if {
	req := {"method": "POST", "path": "/models/staging/open-api/predict", "groups": ["data-science"]}
	not access.allow with input as req with data.modelplane as resources
}

test_unknown_service_denied if {
	req := with_req({"path": "/models/production/nope/predict"})
	not access.allow with input as req with data.modelplane as resources
	access.reasons == {"no InferenceService named nope"} with input as req with data.modelplane as resources
}

test_wrong_method_for_predict_denied if {
	req := with_req({"method": "GET"})
	not access.allow with input as req with data.modelplane as resources
	count(access.reasons) == 1 with input as req with data.modelplane as resources
}

test_wrong_method_for_artifacts_denied if {
	req := with_req({"method": "POST", "path": "/models/production/tumour-api/artifacts/model.joblib"})
	not access.allow with input as req with data.modelplane as resources
}

test_unknown_action_denied if {
	req := with_req({"path": "/models/production/tumour-api/delete"})
	not access.allow with input as req with data.modelplane as resources
}

test_predict_with_sub_path_denied if {
	req := with_req({"path": "/models/production/tumour-api/predict/extra"})
	not access.allow with input as req with data.modelplane as resources
}

test_malformed_paths_denied if {
	every path in [
		"/models/production/tumour-api",
		"/models/production/tumour-api/",
		"/other/production/tumour-api/predict",
		"models/production/tumour-api/predict",
		"/models//tumour-api/predict",
		"/models/production/tumour-api/artifacts/../../secrets",
		"",
	] {
		not access.allow with input as with_req({"path": path}) with data.modelplane as resources
		count(access.reasons) == 1 with input as with_req({"path": path}) with data.modelplane as resources
	}
}

test_missing_path_denied if {
	req := object.remove(predict, ["path"])
	not access.allow with input as req with data.modelplane as resources
	access.reasons == {"path <missing> is not of the form /models/<environment>/<service>/<action>"} with input as req
		with data.modelplane as resources
}

test_every_failure_is_reported if {
	req := {"method": "POST", "path": "/models/staging/tumour-api/predict", "user": "eve", "groups": ["marketing"]}
	not access.allow with input as req with data.modelplane as resources
	count(access.reasons) == 3 with input as req with data.modelplane as resources
}
