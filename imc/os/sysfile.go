package osimc

import (
	"io"
	"io/fs"

	"golang.org/x/sys/unix"
)

// sysFile is a file read with plain open(2), read(2) and close(2). The
// collector reads each of its files once, front to back, so it needs none
// of what os.File adds on Linux: os.Open asks the runtime poller to take
// every file it opens (procfs files are accepted, so each read then costs
// epoll_ctl calls too) and checks the descriptor's flags with fcntl. Reads
// block the calling thread exactly as they do through os.File for regular
// and procfs files.
type sysFile struct {
	fd   int
	path string
}

// openFile opens path read-only and close-on-exec. Errors are
// *fs.PathError wrapping the errno, as os.Open's are, so errors.Is(err,
// fs.ErrNotExist) holds for a missing file.
func openFile(path string) (*sysFile, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return &sysFile{fd: fd, path: path}, nil
	}
}

// Read reads up to len(b) bytes; io.EOF at the end of the file.
func (f *sysFile) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(f.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.path, Err: err}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// Close closes the descriptor; later calls do nothing.
func (f *sysFile) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}

// readSmall reads the file at path into buf until the end of the file or
// until buf is full, and returns how many bytes it holds. A caller that
// allows limit bytes passes a buf of limit+1 and treats n > limit as too
// large, as io.ReadAll(io.LimitReader(f, limit+1)) would.
func readSmall(path string, buf []byte) (int, error) {
	f, err := openFile(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
