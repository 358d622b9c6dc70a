package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with http.tls_cert and http.tls_key the listener serves HTTPS
// and WSS only: a publish over HTTPS reaches a device over WSS.
func TestTLS(t *testing.T) {
	checkNoLeaks(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	env := []string{"HERALD_PRODUCER_KEYS=" + hostileKey, "HERALD_JWT_SECRET=" + hostileJWT}
	p := startCmd(t, env, "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--nats-listen", "off", "--tls-cert", certFile, "--tls-key", keyFile)
	if out := p.stdout.String(); !strings.Contains(out, "https://"+p.addr) || !strings.Contains(out, "--url wss://"+p.addr) {
		t.Errorf("banner does not show https/wss URLs:\n%s", out)
	}
	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	tok := mustMint(t, "alice", "")
	d := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("wss://"+p.addr+"/v1/ws?device=phone&since=0", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.Close()
	readType(t, ws, "welcome")

	req, err := http.NewRequest("POST", "https://"+p.addr+"/v1/users/alice/messages", strings.NewReader(`{"body":"over tls"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+hostileKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("https publish: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("https publish: %d %s", resp.StatusCode, body)
	}
	if f := readType(t, ws, "message"); f["body"] != "over tls" {
		t.Fatalf("wss message = %v", f)
	}

	// Plain HTTP on the TLS port gets no API answer.
	plain, err := http.Get("http://" + p.addr + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
	// A client that does not trust the certificate fails the handshake.
	if _, err := http.Get("https://" + p.addr + "/healthz"); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}

// TestTLSBadFiles: a missing certificate is an error at start.
func TestTLSBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"HERALD_PRODUCER_KEYS=" + hostileKey, "HERALD_JWT_SECRET=" + hostileJWT}
	_, _, err := runCmd(t, env, "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--nats-listen", "off", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.key"))
	if err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Fatalf("serve with missing TLS files: %v", err)
	}
	_, _, err = runCmd(t, env, "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--tls-cert", "x.pem")
	if err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Fatalf("tls_cert without tls_key: %v", err)
	}
}
