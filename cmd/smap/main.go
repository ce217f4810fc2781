// Command smap: see 'smap --help' and docs/smap.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
