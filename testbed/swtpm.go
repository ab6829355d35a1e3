package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

// SWTPM is a running swtpm with a fresh state directory, manufactured by
// swtpm_setup with an RSA and an ECC endorsement key and EK certificates
// signed by a certificate authority of its own (swtpm_localca).
type SWTPM struct {
	// Dir holds state, sockets and the CA.
	Dir string
	// Socket is the TPM command socket (swtpm `--server type=unixio`);
	// the control socket is Socket + ".ctrl", as tpm2-tools' swtpm TCTI
	// expects.
	Socket string
	// CACerts are the PEM files of the EK CA: the root and the issuer.
	CACerts []string

	cmd  *exec.Cmd
	done chan error
}

// SWTPMOptions configure StartSWTPM.
type SWTPMOptions struct {
	// Banks are the PCR banks to activate (default sha1 and sha256).
	Banks []string
}

// SWTPMAvailable reports why swtpm cannot be used here, or nil.
func SWTPMAvailable() error {
	for _, bin := range []string{"swtpm", "swtpm_setup", "swtpm_localca"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("testbed: %s not installed (Debian packages swtpm, swtpm-tools)", bin)
		}
	}
	return nil
}

// StartSWTPM manufactures a TPM in dir (which should be empty) and starts
// swtpm on it. Stop ends it.
func StartSWTPM(ctx context.Context, dir string, opts SWTPMOptions) (*SWTPM, error) {
	if err := SWTPMAvailable(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	banks := opts.Banks
	if len(banks) == 0 {
		banks = []string{"sha1", "sha256"}
	}
	state, ca := filepath.Join(dir, "state"), filepath.Join(dir, "ca")
	for _, d := range []string{state, ca} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	localca := filepath.Join(dir, "localca.conf")
	setup := filepath.Join(dir, "swtpm_setup.conf")
	files := map[string]string{
		localca: fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", ca),
		setup: fmt.Sprintf("create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = %s\n",
			localca, filepath.Join(dir, "localca.options"), strings.Join(banks, ",")),
		filepath.Join(dir, "localca.options"): "--platform-manufacturer trustnac\n--platform-version 1.0\n--platform-model testbed\n",
	}
	for path, data := range files {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	out, err := exec.CommandContext(ctx, "swtpm_setup", "--tpm2", "--tpmstate", state,
		"--create-ek-cert", "--config", setup, "--pcr-banks", strings.Join(banks, ","),
		"--overwrite").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("testbed: swtpm_setup: %w: %s", err, out)
	}
	s := &SWTPM{
		Dir:     dir,
		Socket:  filepath.Join(dir, "tpm.sock"),
		CACerts: []string{filepath.Join(ca, "swtpm-localca-rootca-cert.pem"), filepath.Join(ca, "issuercert.pem")},
		done:    make(chan error, 1),
	}
	s.cmd = exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+state,
		"--server", "type=unixio,path="+s.Socket,
		"--ctrl", "type=unixio,path="+s.Socket+".ctrl",
		"--flags", "startup-clear,not-need-init")
	logf, err := os.Create(filepath.Join(dir, "swtpm.log"))
	if err != nil {
		return nil, err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testbed: swtpm: %w", err)
	}
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The socket file appears at bind; swtpm accepts once it
		// listens. Probe with a connection it serves and drops at once.
		if c, err := net.Dial("unix", s.Socket); err == nil {
			c.Close()
			return s, nil
		}
		select {
		case err := <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "swtpm.log"))
			return nil, fmt.Errorf("testbed: swtpm exited: %v: %s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("testbed: swtpm did not open its socket")
		}
	}
}

// Open connects to the TPM. swtpm serves one connection at a time.
func (s *SWTPM) Open() (transport.TPMCloser, error) {
	return linuxudstpm.Open(s.Socket)
}

// TCTI is the TPM2TOOLS_TCTI value for tpm2-tools.
func (s *SWTPM) TCTI() string { return "swtpm:path=" + s.Socket }

// Stop ends swtpm.
func (s *SWTPM) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	return nil
}
