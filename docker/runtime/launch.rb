# The preloaded Ruby launcher: ruby itself holds the container until "go".
#
# Started as `ruby -r/opt/ce/launch.rb /work/main.rb`. Ruby opens its main
# script, boots (rubygems, did_you_mean, error_highlight: most of its start
# time), and requires this file before it parses the script. The server made
# /work/main.rb a placeholder for the wait. This file announces READY on
# stdout, reads exactly one line from stdin (a JSON object, as for
# docker/runtime/launch) and, when the line is `ruby /work/main.rb ARGS...`,
# points the script's open file at the program's main.rb (the server put it
# in the placeholder's place), sets ARGV, announces GO and returns: ruby
# parses and runs the program as `ruby /work/main.rb ARGS...` would, as its
# main script (`__FILE__`, `$0`, `<main>` frames, DATA, uncaught errors,
# exit codes and signals are ruby's own). Any other command is exec'd, as
# the default launcher does; so is a program whose first line is a `#!`
# line, whose options ruby reads from the main script before requiring this.
#
# Nothing of this file is left for the program to see: no method, constant or
# global is defined (lambdas in local variables only), nothing is required,
# and it leaves $LOADED_FEATURES before the program's first line. stdin and stdout are used with sysread and
# syswrite, which leave their buffers empty. The terminal's echo stays on (no
# io/console): the echoed line comes before GO, and the server drops it.
# tests/integration/test_preload_conformance.py runs a corpus both ways.

ready = "\x1e[ce-ready]\n"
go = "\x1e[ce-go]\n"
max_line = 4000 # a TTY in canonical mode cuts a line at 4095 bytes
script = $0

read_line = lambda do
  # One byte at a time: what follows the line is the program's stdin.
  line = +""
  while line.bytesize < max_line
    byte = begin
      STDIN.sysread(1)
    rescue EOFError
      break
    end
    break if byte == "\n"
    line << byte
  end
  line.force_encoding(Encoding::UTF_8).chomp("\r")
end

# The go line is JSON with strings, lists, true and false (the server's
# json.dumps, so \uXXXX escapes and no raw control characters); the json
# library is not loaded because the program would then see it.
parse = lambda do |text|
  scanner = text.scan(/\s*("(?:[^"\\]|\\.)*"|[\[\]{},:]|true|false|null)/m).flatten
  position = 0
  unescape = lambda do |token|
    # Built by code point with pack("U"): a transcoder would load an encoding library.
    decoded = +""
    high = nil
    token[1..-2].scan(/\\u(\h{4})|\\(.)|([^\\]+)/m) do |code, escaped, plain|
      if code && (0xD800..0xDBFF).cover?(code.hex)
        high = code.hex
        next
      elsif code
        point = code.hex
        point = 0x10000 + ((high - 0xD800) << 10) + (point - 0xDC00) if high
        decoded << [point].pack("U")
      elsif escaped
        decoded << { "b" => "\b", "f" => "\f", "n" => "\n", "r" => "\r", "t" => "\t" }.fetch(escaped, escaped)
      else
        decoded << plain
      end
      high = nil
    end
    decoded
  end
  value = lambda do
    token = scanner[position]
    position += 1
    case token
    when "{"
      object = {}
      until scanner[position] == "}"
        position += 1 if scanner[position] == ","
        key = unescape.(scanner[position])
        position += 2 # the key and its colon
        object[key] = value.()
      end
      position += 1
      object
    when "["
      list = []
      until scanner[position] == "]"
        position += 1 if scanner[position] == ","
        list << value.()
      end
      position += 1
      list
    when "true" then true
    when "false" then false
    when "null" then nil
    else unescape.(token)
    end
  end
  text.strip.empty? ? {} : value.()
end

main_file = ObjectSpace.each_object(IO).find do |io|
  !io.closed? && io.fileno > 2 && (io.path rescue nil) == script
end
STDOUT.syswrite(ready)
order = parse.(read_line.())
argv = (order["argv"] || []).map(&:to_s)
abort "launch.rb: nothing to run" if argv.empty?
here = order["here"] && main_file && argv[0] == "ruby" && argv[1] == script
if here
  main_file.reopen(script)
  here = begin
    main_file.pread(2, 0) != "#!"
  rescue EOFError # an empty program
    true
  end
end
STDOUT.syswrite(go)
exec([argv[0], argv[0]], *argv.drop(1)) unless here
ARGV.replace(argv.drop(2))
# Ruby lists a required file once it has run, so this file leaves the list
# when the program has been compiled, just before its first line runs.
launcher = __FILE__
forget = TracePoint.new(:script_compiled) do
  forget.disable
  $LOADED_FEATURES.delete(launcher)
end
forget.enable
