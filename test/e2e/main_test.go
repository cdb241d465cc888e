package e2e

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as a client process: with
// WEIRTEST_EOS_MEMBER set it runs one exactly-once group member
// (eos_kill_test.go) instead of the tests, so a test can SIGKILL a real
// member process and start another.
func TestMain(m *testing.M) {
	if addr := os.Getenv(eosMemberEnv); addr != "" {
		os.Exit(runEOSMember(addr))
	}
	os.Exit(m.Run())
}
