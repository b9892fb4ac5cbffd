from zsad_bench.cli import main

main(prog_name="zsad")
