package smdtls

import (
	"fmt"
	"log/slog"

	"github.com/pion/dtls/v2"
	"github.com/pion/logging"
)

// pionLoggers routes pion/dtls's logging into slog: its debug messages
// (dropped records, failed decryptions) at Debug, warnings and errors at
// their levels, trace messages nowhere. pion never logs keys unless given
// a KeyLogWriter, which this package never sets.
type pionLoggers struct{ log *slog.Logger }

func (f pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ l *slog.Logger }

func (pionLogger) Trace(string)                        {}
func (pionLogger) Tracef(string, ...interface{})       {}
func (p pionLogger) Debug(m string)                    { p.l.Debug(m) }
func (p pionLogger) Debugf(f string, a ...interface{}) { p.l.Debug(fmt.Sprintf(f, a...)) }
func (p pionLogger) Info(m string)                     { p.l.Info(m) }
func (p pionLogger) Infof(f string, a ...interface{})  { p.l.Info(fmt.Sprintf(f, a...)) }
func (p pionLogger) Warn(m string)                     { p.l.Warn(m) }
func (p pionLogger) Warnf(f string, a ...interface{})  { p.l.Warn(fmt.Sprintf(f, a...)) }
func (p pionLogger) Error(m string)                    { p.l.Error(m) }
func (p pionLogger) Errorf(f string, a ...interface{}) { p.l.Error(fmt.Sprintf(f, a...)) }

// pionConfig is the pion/dtls configuration shared by both roles: only
// TLS_PSK_WITH_SM4_GCM_SM3 (an empty, non-nil CipherSuites list turns
// pion's built-in suites off), extended master secret required, no
// session store (no resumption), the default replay window.
func pionConfig(sess *session, cfg *Config) *dtls.Config {
	return &dtls.Config{
		CipherSuites:         []dtls.CipherSuiteID{},
		CustomCipherSuites:   suiteFactory(sess),
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		MTU:                  cfg.MTU,
		LoggerFactory:        pionLoggers{cfg.Logger},
	}
}
