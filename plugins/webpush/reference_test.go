package webpush

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// referenceScript decrypts a recorded push with the npm http_ece package
// (RFC 8188, the code the web-push library for Node encrypts with) using
// the subscription's private key and auth secret, and verifies its VAPID
// JWT against the k= public key with Node's own crypto.
const referenceScript = `
const crypto = require("crypto");
const ece = require(process.argv[1]);
const c = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = {};
try {
  const receiver = crypto.createECDH("prime256v1");
  receiver.setPrivateKey(Buffer.from(c.private_key, "base64url"));
  const plain = ece.decrypt(Buffer.from(c.body, "base64"), {
    version: "aes128gcm", privateKey: receiver, authSecret: c.auth,
  });
  out.plaintext = plain.toString("base64");
} catch (e) {
  out.decrypt_error = e.message;
}
try {
  const m = /^vapid t=([^,]+), k=(.+)$/.exec(c.authorization);
  if (!m) throw new Error("Authorization is not vapid t=…, k=…");
  const [head, claims, sig] = m[1].split(".");
  const k = Buffer.from(m[2], "base64url");
  if (k.length !== 65 || k[0] !== 4) throw new Error("k is not an uncompressed P-256 point");
  const key = crypto.createPublicKey({ format: "jwk", key: {
    kty: "EC", crv: "P-256",
    x: k.subarray(1, 33).toString("base64url"), y: k.subarray(33).toString("base64url"),
  }});
  out.alg = JSON.parse(Buffer.from(head, "base64url")).alg;
  out.claims = JSON.parse(Buffer.from(claims, "base64url"));
  out.k = m[2];
  out.verified = crypto.verify("sha256", Buffer.from(head + "." + claims),
    { key, dsaEncoding: "ieee-p1363" }, Buffer.from(sig, "base64url"));
} catch (e) {
  out.jwt_error = e.message;
}
process.stdout.write(JSON.stringify(out));
`

// referenceModule returns node and the npm http_ece package (see
// fakes.NodeModule), or skips the test saying why.
func referenceModule(t *testing.T) (node, module string) {
	t.Helper()
	return fakes.NodeModule(t, "http_ece", "1.2.1")
}

// TestReferenceDecryptsAndVerifies pushes through the plugin to a fresh
// subscription (a P-256 key pair and a 16-byte auth secret, as a browser
// makes them), then has Node decrypt the recorded body with http_ece and
// verify the VAPID JWT against the public key: the plaintext must be the
// payload, the JWT must verify against vapid_public_key and name the push
// service's origin, and another subscriber's key must not decrypt it.
func TestReferenceDecryptsAndVerifies(t *testing.T) {
	node, module := referenceModule(t)
	s := newSetup(t)
	other := s.fake.Subscribe()
	d := delivery()
	d.PayloadJSON = []byte(`{"cc_param":"` + strings.Repeat("+/=", 100) + `","sid":"s-1","app_caller_uid":"ユーザー","n":1}`)
	if _, err := s.p.Deliver(context.Background(), d, s.device(t)); err != nil {
		t.Fatal(err)
	}
	push := s.fake.Pushes()[0]

	run := func(privateKey []byte, auth []byte) map[string]any {
		in := map[string]string{
			"body":          base64.StdEncoding.EncodeToString(push.Body),
			"private_key":   base64.RawURLEncoding.EncodeToString(privateKey),
			"auth":          base64.RawURLEncoding.EncodeToString(auth),
			"authorization": push.Header.Get("Authorization"),
		}
		var res map[string]any
		fakes.RunNode(t, node, referenceScript, in, &res, module)
		return res
	}

	res := run(s.sub.Private.Bytes(), s.sub.Auth)
	plain, _ := base64.StdEncoding.DecodeString(toString(res["plaintext"]))
	if res["decrypt_error"] != nil || !bytes.Equal(plain, d.PayloadJSON) {
		t.Errorf("http_ece: plaintext %q (error %v); want the payload %s", plain, res["decrypt_error"], d.PayloadJSON)
	}
	if res["jwt_error"] != nil || res["verified"] != true || res["alg"] != "ES256" {
		t.Errorf("VAPID JWT: verified %v, alg %v, error %v; want ES256 that verifies", res["verified"], res["alg"], res["jwt_error"])
	}
	if res["k"] != s.cfg.VAPIDPublicKey {
		t.Errorf("k=%v; want vapid_public_key %s", res["k"], s.cfg.VAPIDPublicKey)
	}
	claims, _ := res["claims"].(map[string]any)
	exp, _ := claims["exp"].(float64)
	if claims["aud"] != s.fake.URL || claims["sub"] != "mailto:ops@example.com" ||
		time.Unix(int64(exp), 0).Before(time.Now()) || time.Unix(int64(exp), 0).After(time.Now().Add(24*time.Hour)) {
		t.Errorf("claims %v; want aud %s, sub mailto:ops@example.com, exp within 24 h", claims, s.fake.URL)
	}

	res = run(other.Private.Bytes(), other.Auth)
	if res["decrypt_error"] == nil {
		t.Errorf("another subscription's keys decrypted the push: %v", res["plaintext"])
	}
}

func toString(v any) string { s, _ := v.(string); return s }
