// Command sreduce: see 'sreduce --help' and docs/sreduce.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
