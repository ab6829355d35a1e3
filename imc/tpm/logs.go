package tpmimc

import (
	"errors"
	"fmt"
	"io"
	"os"

	"trustnac/transport/patnc"
)

// errLogTooLarge: a log longer than a MeasurementLog attribute can describe.
var errLogTooLarge = errors.New("tpmimc: measurement log too large")

// logPath returns the configured file of a log kind, "" for none.
func (c *Collector) logPath(kind uint8) string {
	var p string
	switch kind {
	case patnc.LogBoot:
		p = c.cfg.EventLog
	case patnc.LogIMA:
		p = c.cfg.IMALog
	}
	if p == "-" {
		return ""
	}
	return p
}

// LogPiece reads a piece of the log of kind (patnc.LogBoot, patnc.LogIMA)
// from offset on, at most Config.MaxLogChunk bytes, with Total the log's
// length as read now. An offset past the end means the log the verifier
// holds a prefix of is gone (the endpoint rebooted): the piece then starts
// again at offset 0. A log not configured ("-") gives nil, nil.
func (c *Collector) LogPiece(kind uint8, offset uint64) (*patnc.MeasurementLog, error) {
	path := c.logPath(kind)
	if path == "" {
		return nil, nil
	}
	data, total, err := readLogPiece(path, offset, c.cfg.MaxLogChunk, patnc.MaxLogTotal)
	if err != nil {
		return nil, err
	}
	if offset > total {
		offset = 0
		data, total, err = readLogPiece(path, 0, c.cfg.MaxLogChunk, patnc.MaxLogTotal)
		if err != nil {
			return nil, err
		}
	}
	return &patnc.MeasurementLog{Kind: kind, Offset: offset, Total: total, Data: data}, nil
}

// readLogPiece reads up to chunk bytes of path from offset and the log's
// length. A regular file reports its size; securityfs logs report size 0
// and are generated as they are read, so their length is counted by
// reading to the end. A log longer than limit is an error. If offset is
// past the end, data is nil and total < offset.
func readLogPiece(path string, offset uint64, chunk int, limit int64) (data []byte, total uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("tpmimc: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("tpmimc: %w", err)
	}
	if st.Mode().IsRegular() && st.Size() > 0 {
		total = uint64(st.Size())
		if total > uint64(limit) {
			return nil, 0, fmt.Errorf("%w: %s is longer than %d bytes", errLogTooLarge, path, limit)
		}
		if offset >= total {
			return nil, total, nil
		}
		buf := make([]byte, min(uint64(chunk), total-offset))
		n, err := f.ReadAt(buf, int64(offset))
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return nil, 0, fmt.Errorf("tpmimc: read %s: %w", path, err)
		}
		return buf[:n:n], total, nil
	}
	skipped, err := io.CopyN(io.Discard, f, int64(min(offset, uint64(limit)+1)))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("tpmimc: read %s: %w", path, err)
	}
	if uint64(skipped) < offset {
		return nil, uint64(skipped), nil
	}
	buf := make([]byte, chunk)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, 0, fmt.Errorf("tpmimc: read %s: %w", path, err)
	}
	total = offset + uint64(n)
	if n == chunk {
		rest, err := io.Copy(io.Discard, io.LimitReader(f, limit+1-int64(min(total, uint64(limit)+1))))
		if err != nil {
			return nil, 0, fmt.Errorf("tpmimc: read %s: %w", path, err)
		}
		total += uint64(rest)
	}
	if total > uint64(limit) {
		return nil, 0, fmt.Errorf("%w: %s is longer than %d bytes", errLogTooLarge, path, limit)
	}
	if n == 0 {
		return nil, total, nil
	}
	return buf[:n:n], total, nil
}
