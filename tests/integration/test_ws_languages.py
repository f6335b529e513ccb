"""Every language runs through the real WebSocket, with files, args and stdin."""

from __future__ import annotations

import base64

import pytest

from tests.integration.terminal import TermClient

HELLO = {
    "python": 'print("hello from python")',
    "py": 'print("hello from python")',
    "javascript": 'console.log("hello from javascript")',
    "js": 'console.log("hello from javascript")',
    "node": 'console.log("hello from javascript")',
    "c": '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }',
    "cpp": '#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }',
    "c++": '#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }',
    "bash": 'echo "hello from bash"',
    "sh": 'echo "hello from bash"',
    "ruby": 'puts "hello from ruby"',
    "rb": 'puts "hello from ruby"',
}
CANONICAL = {
    "py": "python",
    "js": "javascript",
    "node": "javascript",
    "c++": "cpp",
    "sh": "bash",
    "rb": "ruby",
}


@pytest.mark.parametrize("language", sorted(HELLO))
async def test_hello_world_runs_in_every_language_and_alias(
    term: TermClient, language: str
) -> None:
    name = CANONICAL.get(language, language)
    started = await term.run(language, HELLO[language])
    assert started["type"] == "started" and started["language"] == name
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "exited", exit_message
    assert exit_message["exit_code"] == 0
    assert f"hello from {name}\r\n" in term.text()
    compiled = name in {"c", "cpp"}
    stages = [m["stage"] for m in term.messages if m["type"] == "stage"]
    assert stages == (["compile", "run"] if compiled else ["run"])


async def test_compile_error_reports_compiler_output_and_exit_code(term: TermClient) -> None:
    exit_message = await term.run_to_exit("c", "int main(void) { return undefined_name; }")
    assert exit_message["status"] == "compile_error"
    assert exit_message["stage"] == "compile"
    assert exit_message["exit_code"] == 1
    assert "undefined_name" in term.text() and "error" in term.text()
    assert [m["stage"] for m in term.messages if m["type"] == "stage"] == ["compile"]


async def test_cpp_compile_error_never_runs_the_program(term: TermClient) -> None:
    exit_message = await term.run_to_exit("cpp", "int main() { this is not cpp }")
    assert exit_message["status"] == "compile_error"
    assert exit_message["exit_code"] != 0


async def test_multiple_files_first_is_entry_and_base64_decodes(term: TermClient) -> None:
    helper = base64.b64encode(b"GREETING = 'hi from a base64 module'\n").decode()
    exit_message = await term.run_to_exit(
        "python",
        files=[
            {"name": "app.py", "content": "import helper\nprint(helper.GREETING)"},
            {"name": "helper.py", "content": helper, "encoding": "base64"},
        ],
    )
    assert exit_message["exit_code"] == 0, term.text()
    assert "hi from a base64 module" in term.text()


async def test_c_program_of_two_files_compiles_both(term: TermClient) -> None:
    exit_message = await term.run_to_exit(
        "c",
        files=[
            {
                "name": "main.c",
                "content": '#include <stdio.h>\nint twice(int);\nint main(void){printf("%d\\n", twice(21));}',
            },
            {"name": "twice.c", "content": "int twice(int x) { return 2 * x; }"},
        ],
    )
    assert exit_message["exit_code"] == 0, term.text()
    assert "42\r\n" in term.text()


async def test_a_compile_command_longer_than_a_terminal_line_compiles_every_file(
    term: TermClient,
) -> None:
    # 63 helpers with 240-byte names: a compile order of ~16 KB, which a
    # canonical terminal would cut at 4095 bytes on its way to the launcher.
    names = [f"{'part' * 58}{index:04d}.c"[-240:] for index in range(63)]
    helpers = [
        {"name": name, "content": f"int part{index}(void) {{ return {index}; }}"}
        for index, name in enumerate(names)
    ]
    calls = " + ".join(f"part{index}()" for index in range(63))
    declarations = "".join(f"int part{index}(void);" for index in range(63))
    main = f'#include <stdio.h>\n{declarations}\nint main(void){{printf("%d\\n", {calls});}}'
    exit_message = await term.run_to_exit(
        "c", files=[{"name": "main.c", "content": main}, *helpers]
    )
    assert exit_message["exit_code"] == 0, term.text()
    assert f"{sum(range(63))}\r\n" in term.text()


async def test_args_reach_the_program(term: TermClient) -> None:
    args = ["one", "two words", "--flag", "ünïcode", "$HOME"]
    await term.run_to_exit("python", "import sys, json; print(json.dumps(sys.argv[1:]))", args=args)
    assert '["one", "two words", "--flag", "\\u00fcn\\u00efcode", "$HOME"]' in term.text()


async def test_initial_stdin_is_written_once_the_program_starts(term: TermClient) -> None:
    exit_message = await term.run_to_exit(
        "python", "a = input(); b = input(); print(f'got {a}+{b}')", stdin="first\nsecond\n"
    )
    assert exit_message["exit_code"] == 0
    assert "got first+second" in term.text()


async def test_correlation_id_is_echoed(term: TermClient) -> None:
    started = await term.run("bash", "true", id="req-7")
    exit_message = await term.wait_exit()
    assert started["id"] == "req-7" and exit_message["id"] == "req-7"


async def test_one_connection_runs_several_programs_in_turn(term: TermClient) -> None:
    for number in range(3):
        exit_message = await term.run_to_exit("bash", f"exit {number}")
        assert exit_message["exit_code"] == number
