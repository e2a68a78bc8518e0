package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// helmVersion is the helm the tests build from its Go module.
const helmVersion = "v4.3.2"

// helm builds helm from its Go module once (kept in the user's cache, so
// later runs take no time) and returns its path.
func helm(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "eventlistener-test-tools", "helm-"+helmVersion)
	if _, err := os.Stat(filepath.Join(bin, "helm")); err == nil {
		return filepath.Join(bin, "helm")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is needed to build helm: %v", err)
	}
	cmd := exec.Command(gobin, "install", "helm.sh/helm/v4/cmd/helm@"+helmVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot build helm %s from its Go module: %v\n%s", helmVersion, err, out)
	}
	return filepath.Join(bin, "helm")
}

const chart = "helm/eventlistener"

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// strict decodes one manifest into its Kubernetes type, refusing any
// field the type does not have (a misspelt or misplaced key).
func strict(t *testing.T, doc []byte) (kind string) {
	t.Helper()
	var head struct{ Kind string }
	if err := yaml.Unmarshal(doc, &head); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, doc)
	}
	var obj any
	switch head.Kind {
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "Service":
		obj = &corev1.Service{}
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "Secret":
		obj = &corev1.Secret{}
	case "PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	default:
		t.Fatalf("the chart renders a %q, which this test does not know: add its type", head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s does not decode strictly into its type: %v\n%s", head.Kind, err, doc)
	}
	return head.Kind
}

func render(t *testing.T, bin string, set ...string) map[string][][]byte {
	t.Helper()
	args := []string{"template", "el", chart}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out := run(t, bin, args...)
	byKind := map[string][][]byte{}
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
			continue
		}
		kind := strict(t, []byte(doc))
		byKind[kind] = append(byKind[kind], []byte(doc))
	}
	return byKind
}

// The chart lints strictly, renders, and every manifest is a valid object
// of its Kubernetes type; what operators rely on is in it.
func TestHelmChart(t *testing.T) {
	bin := helm(t)
	run(t, bin, "lint", "--strict", chart)

	docs := render(t, bin)
	for _, kind := range []string{"StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		if len(docs[kind]) == 0 {
			t.Fatalf("the chart renders no %s", kind)
		}
	}
	var sts appsv1.StatefulSet
	yaml.UnmarshalStrict(docs["StatefulSet"][0], &sts)
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]
	switch {
	case len(sts.Spec.VolumeClaimTemplates) != 1 || c.VolumeMounts[0].MountPath != "/data":
		t.Error("each pod must keep its WAL on a volume of its own")
	case sts.Spec.PersistentVolumeClaimRetentionPolicy == nil || sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType:
		t.Error("a scaled-down pod's volume must be kept: its WAL may hold acknowledged events")
	case c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz":
		t.Error("probes must be /readyz (readiness) and /healthz (liveness)")
	case c.LivenessProbe.HTTPGet.Port.String() != "admin":
		t.Error("liveness must ask the admin listener: the ingest one queues connections under load")
	case pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 20:
		t.Error("terminationGracePeriodSeconds must exceed the 20 s shutdown timeout")
	case strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":"):
		t.Errorf("the image %q must be pinned", c.Image)
	}
	var hpa autoscalingv2.HorizontalPodAutoscaler
	yaml.UnmarshalStrict(docs["HorizontalPodAutoscaler"][0], &hpa)
	if hpa.Spec.Behavior == nil || hpa.Spec.Behavior.ScaleDown == nil || hpa.Spec.Behavior.ScaleDown.SelectPolicy == nil ||
		*hpa.Spec.Behavior.ScaleDown.SelectPolicy != autoscalingv2.DisabledPolicySelect {
		t.Error("the HPA must not scale down by itself: a pod scaled away strands what its WAL holds")
	}
	var secret corev1.Secret
	yaml.UnmarshalStrict(docs["Secret"][0], &secret)
	if len(secret.StringData) != 0 {
		t.Errorf("empty secrets are rendered: %v", secret.StringData)
	}

	// Another set of values: no autoscaler, a secret of the operator's.
	docs = render(t, bin, "autoscaling.enabled=false", "replicas=2", "secret.existingSecret=mine", "monitoring.dashboardConfigMap=false")
	if len(docs["HorizontalPodAutoscaler"]) != 0 || len(docs["Secret"]) != 0 {
		t.Error("autoscaling off or an existing secret still renders its object")
	}
	yaml.UnmarshalStrict(docs["StatefulSet"][0], &sts)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 2 || sts.Spec.Template.Spec.Containers[0].EnvFrom[1].SecretRef.Name != "mine" {
		t.Error("replicas or the existing secret are not used")
	}
}

// The chart ships the same alert rules and dashboard as deploy/.
func TestChartShipsTheSameRulesAndDashboard(t *testing.T) {
	for src, dst := range map[string]string{"prometheus/alerts.yml": chart + "/files/alerts.yml", "grafana/eventlistener.json": chart + "/files/dashboard.json"} {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: copy it (cp deploy/%s deploy/%s)", dst, src, src, dst)
		}
	}
}
