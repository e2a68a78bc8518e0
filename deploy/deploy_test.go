package deploy

import (
	"os/exec"
	"strings"
	"testing"

	"eventlistener/internal/testenv"
)

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.RequireBinary(t, "promtool", "prometheus")
	cmd := exec.Command(bin, args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The alert rules are valid, and each fires when it should and not
// before (promtool's unit tests).
func TestAlertRules(t *testing.T) {
	if out := promtool(t, "check", "rules", "alerts.yml"); !strings.Contains(out, "SUCCESS: 7 rules found") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	promtool(t, "test", "rules", "alerts_test.yml")
}
