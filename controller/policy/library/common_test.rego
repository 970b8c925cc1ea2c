# Tests for package common.
package common_test

import data.common

owned(kind, labels) := {
	"apiVersion": "modelplane.io/v1alpha1",
	"kind": kind,
	"metadata": {"name": "x", "labels": labels},
	"spec": {},
}

test_owner_label_passes_with_owner if {
	every kind in ["Dataset", "Model", "InferenceService", "ChaosExperiment"] {
		count(common.deny_owner_label) == 0 with input as owned(kind, {"owner": "ml-platform"})
	}
}

test_owner_label_fails_without_owner if {
	every kind in ["Dataset", "Model", "InferenceService", "ChaosExperiment"] {
		count(common.deny_owner_label) == 1 with input as owned(kind, {"domain": "medical"})
	}
}

test_owner_label_fails_without_labels if {
	msgs := common.deny_owner_label with input as {"kind": "Model", "metadata": {"name": "m"}, "spec": {}}
	msgs == {"Model m has no owner: set metadata.labels.owner to the team that answers for it (e.g. owner: ml-platform)"}
}

test_owner_label_fails_when_blank if {
	count(common.deny_owner_label) == 1 with input as owned("Dataset", {"owner": "  "})
}

test_owner_label_fails_when_not_a_string if {
	count(common.deny_owner_label) == 1 with input as owned("Dataset", {"owner": true})
}

test_owner_label_ignores_other_kinds if {
	count(common.deny_owner_label) == 0 with input as owned("PolicyException", {})
}
