// Command sbatch: see 'sbatch --help' and docs/sbatch.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
