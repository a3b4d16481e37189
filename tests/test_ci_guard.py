"""The CI guard of conftest.py: under CI, nothing but a CUDA test may skip, whether a test
skips itself or a whole module skips while it is collected."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CASES = {
    "test_module_skip.py": 'import pytest\npytest.importorskip("no_such_module_xyz")\n\n'
                           'def test_never_collected():\n    pass\n',
    "test_own_skip.py": 'import pytest\n\ndef test_skips():\n    pytest.skip("no browser")\n',
    "test_gpu_skip.py": 'import pytest\n\n@pytest.mark.gpu\ndef test_cuda():\n'
                        '    pytest.skip("needs CUDA")\n',
}


@pytest.mark.parametrize("ci", [True, False])
def test_under_ci_only_cuda_tests_may_skip(pytester, monkeypatch, ci):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    gpu: needs CUDA\n")
    for name, source in CASES.items():
        pytester.path.joinpath(name).write_text(source)
    if ci:
        monkeypatch.setenv("CI", "1")
    else:
        monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA",
                                           "--continue-on-collection-errors")
    outcomes = result.parseoutcomes()
    if ci:  # the module and the test fail; the CUDA test alone skips
        assert (outcomes.get("errors"), outcomes.get("failed"), outcomes.get("skipped")) == (
            1, 1, 1), result.stdout.str()
        result.stdout.fnmatch_lines(["*test_module_skip.py skipped as a whole under CI*"])
    else:
        assert outcomes.get("skipped") == 3 and "failed" not in outcomes, result.stdout.str()
