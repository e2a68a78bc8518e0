package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in continuous integration, that is
// whether the environment variable CI holds a true value ("true", "1").
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Missing ends the calling test because what it needs, described by what, is
// not installed. In CI (see InCI) the test fails; elsewhere it is skipped. Both
// messages say to install debianPackage.
//
// Like t.Fatal, Missing must be called from the goroutine running the test.
func Missing(t testing.TB, what, debianPackage string) {
	t.Helper()
	hint := "install it with: apt-get install " + debianPackage + " (./scripts/test installs it)"
	if InCI() {
		t.Fatalf("%s not found; %s", what, hint)
	}
	t.Skipf("%s not found; %s (set CI=true to make this a failure)", what, hint)
}

// RequireBinary returns the path of the program name, looked up first in
// dirs, then in PATH, then in /usr/sbin and /sbin (which are not on every
// user's PATH). When it is nowhere, RequireBinary calls Missing with
// debianPackage.
func RequireBinary(t testing.TB, name, debianPackage string, dirs ...string) string {
	t.Helper()
	if p, ok := lookBinary(name, dirs...); ok {
		return p
	}
	Missing(t, "program "+name, debianPackage)
	return ""
}

func lookBinary(name string, dirs ...string) (string, bool) {
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, true
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return p, true
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, true
		}
	}
	return "", false
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
