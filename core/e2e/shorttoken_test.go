package e2e

import (
	"testing"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/plugins/sdk"
)

// Ringside and its plugins shorten a token alike in their logs, so an
// operator can follow one device across both; the core does not import
// the SDK, so the two are held together here.
func TestShortTokenAgreesWithSDK(t *testing.T) {
	for _, tok := range []string{
		"", "a", "abc", "abcdef", "0123456789abcdef0123456789abcdef",
		"+8190", "+819012345678", "+81901234567x", "+", "++12345678",
		"éééééééééé", "日本語のトークンです", "ab€cd€ef€gh", "ab€cd€ef€gh€ij€kl€mn",
		"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e", "+abc-def-ghi",
	} {
		if got, want := directory.ShortToken(tok), sdk.ShortToken(tok); got != want {
			t.Errorf("ShortToken(%q): core %q, SDK %q", tok, got, want)
		}
	}
}
