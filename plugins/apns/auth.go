package apns

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/token"
	"golang.org/x/crypto/pkcs12"

	"github.com/ringside/ringside/plugins/sdk"
)

// maxCredentialFile bounds what is read of key_file and certificate_file: an
// Apple .p8 is ~250 bytes and a .p12 a few KB.
const maxCredentialFile = 1 << 20

// certExpiryWarning is how long before its expiry a certificate draws a
// warning at load time.
const certExpiryWarning = 30 * 24 * time.Hour

// authMethod checks that cfg names exactly one way to authenticate to APNs
// and returns "token" or "certificate", or the attribute errors.
func authMethod(cfg Config) (string, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	tokenSet := cfg.TeamID != "" || cfg.KeyID != "" || cfg.KeyFile != ""
	certSet := cfg.CertificateFile != "" || cfg.CertificatePassword != ""
	switch {
	case tokenSet && certSet:
		attr := "certificate_file"
		if cfg.CertificateFile == "" {
			attr = "certificate_password"
		}
		diags.AddAttributeError(attr, "token auth (team_id, key_id, key_file) and certificate auth (certificate_file) are both configured; choose one (Apple recommends token auth with a .p8 key)")
		return "", diags
	case tokenSet:
		for _, a := range [...]struct{ name, value, want string }{
			{"team_id", cfg.TeamID, "the 10-character Team ID of the Apple developer account"},
			{"key_id", cfg.KeyID, "the 10-character Key ID of the .p8 key"},
			{"key_file", cfg.KeyFile, "the path of the .p8 key (AuthKey_<key_id>.p8)"},
		} {
			if a.value == "" {
				diags.AddAttributeError(a.name, "token auth needs team_id, key_id and key_file; set %s to %s", a.name, a.want)
			}
		}
		return "token", diags
	case certSet:
		if cfg.CertificateFile == "" {
			diags.AddAttributeError("certificate_password", "is set without certificate_file")
			return "", diags
		}
		return "certificate", nil
	default:
		diags.AddError("no APNs credentials: set team_id, key_id and key_file (token auth, a .p8 key) or certificate_file (certificate auth, .p12 or .pem)")
		return "", diags
	}
}

// appleID reports whether s looks like an Apple Team ID or Key ID: 10
// upper-case letters or digits.
func appleID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// readCredential reads a key or certificate file. Its errors name the path
// (not a secret) and never the content.
func readCredential(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s does not exist", path)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("%s is not readable by ringside (permission denied)", path)
		}
		return nil, fmt.Errorf("cannot open %s", path)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxCredentialFile+1)); err != nil {
		return nil, fmt.Errorf("cannot read %s", path)
	}
	if buf.Len() > maxCredentialFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key or certificate", path, maxCredentialFile)
	}
	return buf.Bytes(), nil
}

// loadToken reads an Apple .p8 key and returns a provider token for it,
// already signed once (so a key that cannot sign fails now, not at the
// first push). Its errors never quote the file.
func loadToken(cfg Config) (*token.Token, error) {
	b, err := readCredential(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	key, err := token.AuthKeyFromBytes(b)
	if err != nil {
		switch {
		case errors.Is(err, token.ErrAuthKeyNotPem):
			return nil, fmt.Errorf("%s is not a PEM file: want the .p8 key downloaded from the Apple developer account (-----BEGIN PRIVATE KEY-----)", cfg.KeyFile)
		case errors.Is(err, token.ErrAuthKeyNotECDSA):
			return nil, fmt.Errorf("%s holds a private key that is not an EC key: an APNs .p8 key is a P-256 EC key", cfg.KeyFile)
		}
		return nil, fmt.Errorf("%s is not a PKCS#8 private key: want the .p8 key downloaded from the Apple developer account", cfg.KeyFile)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s holds an EC key on %s: APNs (ES256) needs a P-256 key", cfg.KeyFile, key.Curve.Params().Name)
	}
	t := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	if _, err := t.Generate(); err != nil {
		return nil, fmt.Errorf("%s: cannot sign a provider token with this key", cfg.KeyFile)
	}
	return t, nil
}

// loadCertificate reads an APNs client certificate and its private key from
// a .p12 (PKCS#12) or .pem file. Its error points at the attribute at fault
// (certificate_password for a wrong password); a certificate that expires
// soon comes with a warning. Its diagnostics never quote the file or the
// password.
func loadCertificate(cfg Config, now time.Time) (tls.Certificate, sdk.Diagnostics) {
	path := cfg.CertificateFile
	var diags sdk.Diagnostics
	fail := func(attr, format string, args ...any) (tls.Certificate, sdk.Diagnostics) {
		diags.AddAttributeError(attr, format, args...)
		return tls.Certificate{}, diags
	}
	b, err := readCredential(path)
	if err != nil {
		return fail("certificate_file", "%s", err)
	}
	var cert tls.Certificate
	if isPEM(b) {
		cert, err = certificate.FromPemBytes(b, cfg.CertificatePassword)
		switch {
		case errors.Is(err, certificate.ErrFailedToDecryptKey):
			return fail("certificate_password", "does not decrypt the private key in %s", path)
		case errors.Is(err, certificate.ErrNoCertificate):
			return fail("certificate_file", "%s holds no CERTIFICATE block: the .pem must hold the APNs certificate and its private key", path)
		case errors.Is(err, certificate.ErrNoPrivateKey):
			return fail("certificate_file", "%s holds no PRIVATE KEY block: the .pem must hold the APNs certificate and its private key", path)
		case err != nil:
			return fail("certificate_file", "%s: the private key cannot be parsed (want PKCS#1 or PKCS#8)", path)
		}
	} else {
		cert, err = fromP12(b, cfg.CertificatePassword)
		switch {
		case errors.Is(err, pkcs12.ErrIncorrectPassword):
			return fail("certificate_password", "does not open %s (wrong password; leave it unset for a .p12 exported without one)", path)
		case err != nil:
			return fail("certificate_file", "%s is neither PEM nor a PKCS#12 file this plugin can read (%s); convert it with `openssl pkcs12 -in cert.p12 -out cert.pem -nodes` (add -legacy for OpenSSL 3) and configure the .pem", path, p12Problem(err))
		}
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fail("certificate_file", "%s: the certificate cannot be parsed", path)
		}
		cert.Leaf = leaf
	}
	if !keyMatches(leaf, cert.PrivateKey) {
		return fail("certificate_file", "%s: the private key does not belong to the certificate", path)
	}
	switch {
	case now.After(leaf.NotAfter):
		return fail("certificate_file", "the certificate %q in %s expired on %s; create a new one in the Apple developer account (or switch to token auth with a .p8 key, which does not expire)",
			leaf.Subject.CommonName, filepath.Base(path), leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return fail("certificate_file", "the certificate %q in %s is not valid before %s", leaf.Subject.CommonName, filepath.Base(path), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if left := leaf.NotAfter.Sub(now); left < certExpiryWarning {
		diags.AddAttributeWarning("certificate_file", "the certificate %q expires on %s (in %d days); renew it in the Apple developer account",
			leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
	}
	return cert, diags
}

// isPEM reports whether b starts (after blank space) with a PEM block.
func isPEM(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN "))
}

// fromP12 decodes a PKCS#12 file holding one certificate and its key. A file
// with more bags (a certificate chain) is converted through PEM.
func fromP12(b []byte, password string) (tls.Certificate, error) {
	cert, err := certificate.FromP12Bytes(b, password)
	if err == nil || errors.Is(err, pkcs12.ErrIncorrectPassword) {
		return cert, err
	}
	blocks, perr := pkcs12.ToPEM(b, password)
	if perr != nil {
		return tls.Certificate{}, err
	}
	var buf bytes.Buffer
	for _, blk := range blocks {
		_ = pem.Encode(&buf, &pem.Block{Type: blk.Type, Bytes: blk.Bytes})
	}
	cert, cerr := certificate.FromPemBytes(buf.Bytes(), "")
	if cerr != nil {
		return tls.Certificate{}, err
	}
	// ToPEM keeps the bags' order; the APNs certificate is the one that
	// matches the key.
	for i, der := range cert.Certificate {
		if c, err := x509.ParseCertificate(der); err == nil && keyMatches(c, cert.PrivateKey) {
			cert.Certificate[0], cert.Certificate[i] = cert.Certificate[i], cert.Certificate[0]
			cert.Leaf = c
			break
		}
	}
	return cert, nil
}

// p12Problem describes a PKCS#12 decoding error without any of the file.
func p12Problem(err error) string {
	var nse pkcs12.NotImplementedError
	if errors.As(err, &nse) {
		return "an encryption it does not support, such as the AES of newer exports"
	}
	return "not a PKCS#12 structure"
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.PrivateKey) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(signer.Public())
}
