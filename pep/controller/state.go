package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"trustnac/internal/atomicfile"
)

// maxStateFile bounds the state file read at start.
const maxStateFile = 16 << 20

// maxStoredSessions caps the sessions read from the state file.
const maxStoredSessions = 1 << 16

// storedSession is what the state file keeps of a session: what the kernel cannot tell.
type storedSession struct {
	Port      string    `json:"port"`
	MAC       string    `json:"mac"`
	Method    string    `json:"method"`
	SessionID string    `json:"acct_session_id"`
	User      string    `json:"user,omitempty"`
	Class     [][]byte  `json:"class,omitempty"`
	Started   time.Time `json:"started"`
	IP        string    `json:"ip,omitempty"`
}

type stateFile struct {
	Version  int             `json:"version"`
	Sessions []storedSession `json:"sessions"`
}

// decodeState parses a state file. It is pure and bounded.
func decodeState(b []byte) ([]storedSession, error) {
	if len(b) > maxStateFile {
		return nil, errors.New("controller: state file too large")
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("controller: state file: %w", err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("controller: state file version %d", f.Version)
	}
	if len(f.Sessions) > maxStoredSessions {
		return nil, errors.New("controller: state file has too many sessions")
	}
	return f.Sessions, nil
}

// readState reads the state file in dir; a missing file is no sessions.
func readState(dir string) ([]storedSession, error) {
	f, err := os.Open(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return decodeState(b)
}

// writeState replaces the state file atomically: a temporary file, synced, then renamed.
func writeState(dir string, ss []storedSession) error {
	if ss == nil {
		ss = []storedSession{}
	}
	b, err := json.MarshalIndent(stateFile{Version: 1, Sessions: ss}, "", "  ")
	if err != nil {
		return fmt.Errorf("controller: state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, stateFileName), b, 0o600); err != nil {
		return fmt.Errorf("controller: state: %w", err)
	}
	return nil
}
