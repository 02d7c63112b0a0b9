import json
import subprocess
import sys

import pytest
import torch

from visionkit.cli import build_parser, main


def test_adapt_and_evaluate_print_one_json_line(saved_backbone, capsys):
    assert main(["adapt", "zero_shot", "--backbone", saved_backbone, "--num-examples", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"accuracy", "worst_group_accuracy"}


def test_train_command(saved_backbone, tmp_path, capsys):
    argv = ["train", "late_fusion", "--backbone", saved_backbone, "--out", str(tmp_path)]
    argv += ["--steps", "2", "--batch-size", "4", "--num-examples", "12"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "late_fusion"
    assert result["trainable"] == 3 * 65
    argv = ["evaluate", "--backbone", saved_backbone, "--model", str(tmp_path)]
    assert main([*argv, "--num-examples", "6"]) == 0
    assert "accuracy" in json.loads(capsys.readouterr().out)


def test_errors_exit_with_a_message(tmp_path, capsys):
    assert main(["adapt", "zero_shot", "--backbone", str(tmp_path / "none")]) == 2
    assert "not a local directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["adapt", "tpt", "--backbone", "x", "--method-config", "[1]"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "vpt", "--backbone", "x"])


def test_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "visionkit", "--help"], capture_output=True, text=True, check=True
    )
    assert "pretrain" in out.stdout


def test_device_and_precision_are_passed_through(saved_backbone, capsys):
    argv = ["adapt", "tpt", "--backbone", saved_backbone, "--num-examples", "4"]
    argv += ["--method-config", '{"steps": 1, "num_views": 4}']
    assert main([*argv, "--device", "cpu", "--precision", "bf16"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert set(bf16) == {"accuracy", "worst_group_accuracy"}
    # fp16 reaches esmscale.devices, which refuses it on the CPU
    assert main([*argv, "--precision", "fp16"]) == 2
    assert "precision='fp16' is not supported on the CPU" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--precision", "fp64"])
    args = build_parser().parse_args(["evaluate", "--backbone", "x"])
    assert (args.device, args.precision) == ("cpu", "fp32")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_absent_device_exits_with_the_devices_present(saved_backbone, tmp_path, capsys):
    argv = ["train", "late_fusion", "--backbone", saved_backbone, "--steps", "1"]
    assert main([*argv, "--num-examples", "8", "--device", "cuda"]) == 2
    assert "devices present: cpu" in capsys.readouterr().err
