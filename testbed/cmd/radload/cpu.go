package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// processCPU returns the user plus system CPU time process pid has used, all its threads
// together, from /proc/PID/stat (proc(5): fields 14 and 15, counted after the parenthesised
// command name, which may itself hold spaces and parentheses).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("radload: /proc stat without a command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("radload: /proc stat with %d fields", len(f)+2)
	}
	var total time.Duration
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return 0, fmt.Errorf("radload: /proc stat cpu time %q: %w", s, err)
		}
		total += time.Duration(n) * clockTick
	}
	return total, nil
}

// selfCPU returns the user plus system CPU time radload has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter samples the CPU times of radload and, when serverPID is set, of the server at the
// start and end of the measured window.
type cpuMeter struct {
	serverPID         int
	self0, server0    time.Duration
	serverOK          bool
	selfUsed, srvUsed time.Duration
	serverMeasured    bool
}

func (m *cpuMeter) start() {
	m.self0 = selfCPU()
	if m.serverPID > 0 {
		var err error
		m.server0, err = processCPU(m.serverPID)
		m.serverOK = err == nil
	}
}

func (m *cpuMeter) stop() {
	m.selfUsed = selfCPU() - m.self0
	if m.serverOK {
		if t, err := processCPU(m.serverPID); err == nil {
			m.srvUsed, m.serverMeasured = t-m.server0, true
		}
	}
}

// perTransaction sets the CPU figures of s: microseconds of CPU per answered transaction.
func (m *cpuMeter) perTransaction(s *Summary) {
	n := s.Accept + s.Reject + s.Error
	if n == 0 {
		return
	}
	s.LoadCPU = float64(m.selfUsed.Microseconds()) / float64(n)
	if m.serverMeasured {
		s.ServerCPU = float64(m.srvUsed.Microseconds()) / float64(n)
	}
}
