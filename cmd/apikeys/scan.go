package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keyward/apikeys"
)

// maxScanSize: larger files are skipped.
const maxScanSize = 10 << 20

// finding is a leaked key scan found; never its value.
type finding struct {
	File string          `json:"file"`
	Line int             `json:"line"`
	ID   string          `json:"id"`
	Type apikeys.KeyType `json:"key_type"`
}

func (a *app) scanCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "scan PATH...",
		Short: "Find leaked keys in files",
		Long: `Find strings in files that are keys of this prefix (--prefix) with a valid checksum,
that is, leaked keys, and print each as "file:line: key ID (TYPE)", never the value.
Directories are walked; .git directories, binary files (a NUL byte in the first 8 KB)
and files larger than 10 MB are skipped. It needs no store: revoke what it finds
with delete or rotate.

Exit status: 0 nothing found; 1 keys found; 2 usage or read error (a file that could
not be read; the others are still scanned).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			re := keyPattern(a.prefix)
			found := []finding{}
			var failed error
			for _, root := range args {
				// A root given by name is followed if it is a symbolic
				// link (mounted secrets and config maps are), which
				// WalkDir alone would skip; links inside it are not.
				if resolved, err := filepath.EvalSymlinks(root); err == nil && resolved != root {
					if fi, err := os.Stat(resolved); err == nil && fi.Mode().IsRegular() {
						err = scanFile(resolved, re.FindAllString, func(line int, s string) {
							if p, ok := parseKey(a.prefix, s); ok {
								found = append(found, finding{File: root, Line: line, ID: p.id.String(), Type: p.typ})
							}
						})
						if err != nil {
							fmt.Fprintln(a.stderr, "apikeys: scan:", err)
							failed = err
						}
						continue
					}
					root = resolved
				}
				err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
					if err != nil {
						fmt.Fprintln(a.stderr, "apikeys: scan:", err)
						failed = err
						return nil
					}
					if d.IsDir() {
						if d.Name() == ".git" && path != root {
							return filepath.SkipDir
						}
						return nil
					}
					if !d.Type().IsRegular() {
						return nil
					}
					err = scanFile(path, re.FindAllString, func(line int, s string) {
						if p, ok := parseKey(a.prefix, s); ok {
							found = append(found, finding{File: path, Line: line, ID: p.id.String(), Type: p.typ})
						}
					})
					if err != nil {
						fmt.Fprintln(a.stderr, "apikeys: scan:", err)
						failed = err
					}
					return cmd.Context().Err()
				})
				if err != nil {
					return err
				}
			}
			if a.output == "json" {
				if err := a.printJSON(found); err != nil {
					return err
				}
			} else {
				for _, f := range found {
					fmt.Fprintf(a.stdout, "%s:%d: key %s (%s)\n", f.File, f.Line, f.ID, f.Type)
				}
			}
			switch {
			case failed != nil:
				return &exitError{code: exitFailure, msg: "scan: some files could not be read"}
			case len(found) > 0:
				return &exitError{code: exitFound, msg: fmt.Sprintf("%d leaked key(s) found", len(found))}
			}
			return nil
		},
	}
}

// scanFile calls hit with the line number of every match of find in the
// file at path, unless the file is too large or binary.
func scanFile(path string, find func(string, int) []string, hit func(line int, s string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() > maxScanSize {
		return nil
	}
	br := bufio.NewReaderSize(f, 64<<10)
	head, err := br.Peek(8 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return nil
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), maxScanSize+1)
	for n := 1; sc.Scan(); n++ {
		for _, s := range find(sc.Text(), -1) {
			hit(n, s)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
