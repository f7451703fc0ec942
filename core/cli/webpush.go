package cli

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// webpushKeys prints a fresh VAPID key pair for the webpush plugin, base64url
// without padding, as environment assignments: the private key (for
// vapid_private_key, through env() or file()) and the public key (for
// vapid_public_key and the page's applicationServerKey).
func (c *cmd) webpushKeys(args []string) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(c.stdout, "usage: ringside webpush-keys")
			return ExitOK
		}
		fmt.Fprintln(c.stderr, "usage: ringside webpush-keys")
		return ExitUsage
	}
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		fmt.Fprintf(c.stderr, "ringside webpush-keys: %v\n", err)
		return ExitError
	}
	fmt.Fprintf(c.stdout, "VAPID_PRIVATE_KEY=%s\nVAPID_PUBLIC_KEY=%s\n",
		base64.RawURLEncoding.EncodeToString(k.Bytes()),
		base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()))
	return ExitOK
}
