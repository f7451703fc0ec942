package pluginhost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// The plugin channel is mutual TLS (go-plugin AutoMTLS): the child is given
// the host's client certificate in PLUGIN_CLIENT_CERT, the host's gRPC
// calls run over TLS to the certificate the child presents, and the child's
// listener refuses a client without the host's certificate, or without TLS.
func TestPluginChannelMTLS(t *testing.T) {
	c := startTestPlugin(t)

	// The child's environment carries the host's client certificate.
	resp := deliver(t, c, t.Context(), "env:PLUGIN_CLIENT_CERT")
	got := resp.Outcomes[0].ProviderId
	certPEM, ok := strings.CutPrefix(got, "true:")
	if !ok {
		t.Fatalf("PLUGIN_CLIENT_CERT in the plugin: %q; want set", got)
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("PLUGIN_CLIENT_CERT is not a PEM certificate: %q", certPEM)
	}
	clientCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("PLUGIN_CLIENT_CERT: %v", err)
	}
	if time.Until(clientCert.NotAfter) <= 0 {
		t.Errorf("client certificate expired at %v", clientCert.NotAfter)
	}

	// The host's client reports a TLS connection with a peer certificate.
	var p peer.Peer
	if _, err := c.rpc.Health(t.Context(), &pluginpb.HealthRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		t.Fatalf("the plugin channel's auth info is %T; want TLS", p.AuthInfo)
	}
	st := info.State
	if !st.HandshakeComplete || st.Version < tls.VersionTLS12 || len(st.PeerCertificates) == 0 {
		t.Errorf("TLS state: complete %v, version %x, %d peer certificates", st.HandshakeComplete, st.Version, len(st.PeerCertificates))
	}
	if len(st.PeerCertificates) > 0 && st.PeerCertificates[0].Equal(clientCert) {
		t.Error("the plugin presents the host's own client certificate")
	}

	rc := c.pc.ReattachConfig()
	if rc == nil || rc.Addr == nil {
		t.Fatal("no plugin address")
	}
	addr := rc.Addr

	// A TLS client without the host's certificate is refused.
	conn, err := tls.Dial(addr.Network(), addr.String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		// TLS 1.3: the server's refusal arrives with the first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("TLS without a client certificate: err %v; want the handshake refused for the certificate", err)
	}

	// Plaintext gRPC does not work either.
	target := "passthrough:///" + addr.String()
	if addr.Network() == "unix" {
		target = "unix://" + addr.String()
	}
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := pluginpb.NewPluginClient(cc).Info(ctx, &pluginpb.InfoRequest{}); err == nil {
		t.Error("a plaintext gRPC client was served by the plugin")
	}
}
