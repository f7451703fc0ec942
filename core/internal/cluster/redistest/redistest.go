// Package redistest starts a real redis-server for tests: on a free
// loopback port, without persistence, in the test's temporary folder, and
// stopped when the test ends. A test calling Start skips, saying why, on a
// machine without redis-server.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout is how long a started server has to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process. Its methods are safe for concurrent
// use.
type Server struct {
	bin, dir string
	port     int
	password string
	args     []string
	cluster  bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Option changes how Start runs the server.
type Option func(*Server)

// WithPassword makes the server require password (requirepass) from its
// clients.
func WithPassword(password string) Option {
	return func(s *Server) { s.password = password }
}

// WithArgs adds command-line arguments to redis-server (after the
// defaults, which they may override), such as "--appendonly", "yes".
func WithArgs(args ...string) Option {
	return func(s *Server) { s.args = append(s.args, args...) }
}

// WithCluster runs the server as a Redis Cluster of one node, which serves
// every slot.
func WithCluster() Option {
	return func(s *Server) { s.cluster = true }
}

// Start starts a redis-server on a free loopback port with `--save ""
// --appendonly no` in t.TempDir(), waits until it answers PING, and stops
// it when the test ends. It calls t.Skip when redis-server is not
// installed.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr != nil {
			t.Skip("redis-server not installed: apt-get install redis-server (CI installs it)")
		}
		bin = "/usr/bin/redis-server"
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	for _, o := range opts {
		o(s)
	}
	t.Cleanup(s.Stop)
	// A free port may be taken by another process between choosing it
	// and the server binding it: choose again.
	for attempt := 0; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: choose a port: %v", err)
		}
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 2 {
			t.Fatalf("redistest: %v", err)
		}
	}
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Password returns the password given WithPassword, or "".
func (s *Server) Password() string { return s.password }

// Restart kills the server (SIGKILL) and starts a new one on the same port
// and folder. Without persistence the new server is empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		// The port may not be free again yet.
		if time.Now().After(deadline) {
			t.Fatalf("redistest: restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL) and waits for it to exit. It does
// nothing when the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// start runs redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logPath := filepath.Join(s.dir, "redis.log")
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", logPath,
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	if s.cluster {
		// The node's file keeps its slots across Restart.
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	}
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.ping()
		if err == nil && s.cluster {
			err = s.serveAllSlots()
		}
		if err == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %v\n%s", s.port, cmd.ProcessState, tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %w\n%s", s.port, startTimeout, err, tail(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends PING and reads PONG.
func (s *Server) ping() error {
	r, err := s.do("PING")
	if err == nil && r != "PONG" {
		err = fmt.Errorf("PING answered %q", r)
	}
	return err
}

// serveAllSlots gives the cluster node every slot, unless it has them,
// and waits for its state to be ok.
func (s *Server) serveAllSlots() error {
	info, err := s.do("CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_slots_assigned:16384") {
		if _, err := s.do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
			return err
		}
	}
	if info, err = s.do("CLUSTER", "INFO"); err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return errors.New("cluster state is not ok yet")
	}
	return nil
}

// do sends AUTH (with a password) and the command args on a new
// connection, and returns its reply: a status, an integer or a bulk
// string. An error reply is an error.
func (s *Server) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var req strings.Builder
	cmds := [][]string{args}
	if s.password != "" {
		cmds = [][]string{{"AUTH", s.password}, args}
	}
	for _, cmd := range cmds {
		fmt.Fprintf(&req, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := c.Write([]byte(req.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	var reply string
	for i := range cmds {
		if reply, err = readReply(r); err != nil {
			if i == 0 && len(cmds) == 2 {
				return "", fmt.Errorf("AUTH: %w", err)
			}
			return "", err
		}
	}
	return reply, nil
}

// readReply reads one RESP2 reply that is not an array.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of the server's log, for an error.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}
