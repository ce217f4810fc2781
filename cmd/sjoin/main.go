// Command sjoin: see 'sjoin --help' and docs/sjoin.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
