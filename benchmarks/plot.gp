# Renders chunks/s against readers, for both chunk sizes, from run_matrix.py's CSV:
#   gnuplot -c benchmarks/plot.gp [results.csv] [chunks_per_s.svg]
# Both default to the files beside this script. Needs gnuplot 5.4 (Debian: gnuplot-nox).
here = ARG0[1:strstrt(ARG0, "plot.gp") - 1]
csv = ARGC >= 1 ? ARG1 : here . "results.csv"
svg = ARGC >= 2 ? ARG2 : here . "chunks_per_s.svg"

set datafile separator ","
# CSV columns: 1 impl, 2 loop, 3 chunk, 4 readers, 9 chunks_per_s.
# One datablock per (implementation, loop, chunk size): readers, chunks/s. The filter compares
# strings only (gnuplot 5.4's `with table if` made no table from a numeric column test).
series(impl, loop, chunk) = sprintf( \
  "set table $%s_%s_%s; plot csv skip 1 using 4:9 with table if (strcol(1) eq '%s' && strcol(2) eq '%s' && strcol(3) eq '%s'); unset table", \
  impl, loop eq "-" ? "all" : loop, chunk, impl, loop, chunk)
do for [chunk in "64 65536"] {
  eval series("bytecast", "plain", chunk)
  eval series("bytecast", "drain", chunk)
  eval series("channel", "plain", chunk)
  eval series("channel", "drain", chunk)
  eval series("ceiling", "-", chunk)
}
# T of each chunk size and the highest load average, for the titles (column 6 total_bytes, 21 load1).
stats csv skip 1 using (strcol(3) eq "64" ? $6 : NaN) name "small" nooutput
stats csv skip 1 using (strcol(3) eq "65536" ? $6 : NaN) name "big" nooutput
stats csv skip 1 using 21 name "load" nooutput
size(b) = b >= 2**30 ? sprintf("%g GiB", b / 2.0**30) : sprintf("%g MiB", b / 2.0**20)
set datafile separator whitespace # the datablocks are whitespace-separated

set terminal svg size 1000,440 font "sans,12" background "white"
set output svg
set multiplot layout 1,2 title sprintf("bytecast: chunks/s summed over readers (2 io threads + 1 writer; higher is better; load average up to %.2f)", load_max)
set logscale x 2
set logscale y 10
set format y "%.0s%c"
set xlabel "readers"
set ylabel "chunks/s"
set grid
# Fixed y ranges leave the bottom decade(s) free for the key.
set key inside bottom right font ",10" samplen 3 opaque
set style line 1 lc rgb "#1f77b4" lw 2 pt 7
set style line 2 lc rgb "#1f77b4" lw 2 pt 5 dt 2
set style line 3 lc rgb "#d62728" lw 2 pt 7
set style line 4 lc rgb "#d62728" lw 2 pt 5 dt 2
set style line 5 lc rgb "#555555" lw 2 pt 9 dt 3

set title sprintf("C = 64 B, T = %s", size(small_max))
set xrange [0.8:20]
set yrange [1e5:1e8]
plot $bytecast_plain_64 using 1:2 with linespoints ls 1 title "bytecast plain", \
     $bytecast_drain_64 using 1:2 with linespoints ls 2 title "bytecast drain", \
     $channel_plain_64 using 1:2 with linespoints ls 3 title "channel plain", \
     $channel_drain_64 using 1:2 with linespoints ls 4 title "channel drain", \
     $ceiling_all_64 using 1:2 with linespoints ls 5 title "executor ceiling (defer)"

set title sprintf("C = 64 KiB, T = %s", size(big_max))
set xrange [0.8:80]
set yrange [1e3:1e8]
plot $bytecast_plain_65536 using 1:2 with linespoints ls 1 title "bytecast plain", \
     $bytecast_drain_65536 using 1:2 with linespoints ls 2 title "bytecast drain", \
     $channel_plain_65536 using 1:2 with linespoints ls 3 title "channel plain", \
     $channel_drain_65536 using 1:2 with linespoints ls 4 title "channel drain", \
     $ceiling_all_65536 using 1:2 with linespoints ls 5 title "executor ceiling (defer)"
unset multiplot
unset output
