"""Protocols as data: training pairs with several auxiliary datasets, the zero-shot guard on each of them,
the protocols' own models, and the adaclip-paper protocol against the official scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsad_bench.errors import ZsadError
from zsad_bench.metrics.aupro import AUPRO_VARIANTS
from zsad_bench.protocols import (
    Protocol,
    TrainingPair,
    adaclip_paper,
    anomalyclip_paper,
    aux_datasets,
    aux_key,
    default,
    load_protocol_file,
)
from zsad_bench.registry import DATASETS, PROTOCOLS

YAML = Path(__file__).parents[2] / "zsad_bench" / "protocols" / "adaclip-paper.yaml"


def test_aux_key_joins_ids_and_refuses_what_cannot_be_split_back():
    assert (
        aux_key("mvtec-ad") == "mvtec-ad" and aux_key(["mvtec-ad", "cvc-colondb"]) == "mvtec-ad+cvc-colondb"
    )
    assert aux_key("a+b") == "a+b" and aux_datasets("a+b") == ("a", "b") and aux_datasets("a") == ("a",)
    for bad, words in (
        (["a+b", "c"], r"'a\+b' contains '\+'"),
        (["a", "a"], "names a dataset twice"),
        (["a", ""], "empty dataset id"),
        ("a+", "empty dataset id"),
        ([], "empty dataset id"),
    ):
        with pytest.raises(ZsadError, match=words):
            aux_key(bad)


def test_a_pair_lists_its_datasets_and_never_targets_them():
    pair = TrainingPair("mvtec-ad+cvc-colondb", ("visa",))
    assert pair.aux_datasets == ("mvtec-ad", "cvc-colondb")
    with pytest.raises(ZsadError, match="lists its own training data cvc-colondb among its targets"):
        TrainingPair("mvtec-ad+cvc-colondb", ("visa", "cvc-colondb"))


def test_yaml_aux_may_be_one_id_or_a_list(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\ntraining:\n  - aux: [a, b]\n    targets: [c]\n  - aux: c\n    targets: [a]\n")
    protocol = load_protocol_file(path)
    assert [p.aux for p in protocol.training] == ["a+b", "c"] and protocol.models == ()
    path.write_text("name: p\ntraining:\n  - aux: [a+b, c]\n    targets: [d]\n")
    with pytest.raises(ZsadError, match=r"p\.yaml: auxiliary dataset id 'a\+b' contains '\+'"):
        load_protocol_file(path)


def test_the_guard_refuses_every_auxiliary_dataset_and_names_the_targets():
    protocol = adaclip_paper
    for member in ("mvtec-ad", "cvc-colondb"):
        assert protocol.refuses("mvtec-ad+cvc-colondb", member)
    assert not protocol.refuses("mvtec-ad+cvc-colondb", "visa") and not protocol.refuses(None, "visa")
    assert not protocol.refuses("mvtec-ad+cvc-colondb", "mvtec")  # a member, not a substring
    line = protocol.refusal("adaclip", "mvtec-ad+cvc-colondb")
    assert "trained on mvtec-ad+cvc-colondb" in line
    assert "evaluate it on visa, mpdd, btad ... (the targets of mvtec-ad+cvc-colondb" in line
    # a member alone: the targets of the pairs it belongs to, never the member's own data
    line = protocol.refusal("adaclip", "visa")
    assert "evaluate it on mvtec-ad, cvc-colondb (the targets of visa+cvc-clinicdb" in line
    assert "any dataset but foo or bar" in default.refusal("x", "foo+bar")


def test_adaclip_paper_is_the_official_scripts_protocol():
    first, second = adaclip_paper.training
    # train.sh / test.sh / app.py / README "Corrections": MVTec AD + ColonDB and VisA + ClinicDB
    assert first.aux_datasets == ("mvtec-ad", "cvc-colondb") and second.aux_datasets == (
        "visa",
        "cvc-clinicdb",
    )
    # test.sh: pretrained_mvtec_colondb.pth on br35h brain_mri btad clinicdb dagm dtd headct isic mpdd sdd
    # tn3k visa; pretrained_visa_clinicdb.pth on colondb mvtec
    official = ["br35h", "brainmri", "btad", "cvc-clinicdb", "dagm", "dtd-synthetic", "headct", "isic",
                "mpdd", "sdd", "tn3k", "visa"]  # fmt: skip
    assert sorted(first.targets) == official and sorted(second.targets) == ["cvc-colondb", "mvtec-ad"]
    used = {*first.aux_datasets, *second.aux_datasets, *first.targets, *second.targets}
    assert len(used) == 14 and not used & {"covid19", "kvasir", "endo"}  # AdaCLIP's 14 datasets
    assert used <= set(DATASETS.names())
    assert (adaclip_paper.eval_size, adaclip_paper.precision, adaclip_paper.fpr_limit) == (518, "fp32", 0.3)
    assert adaclip_paper.aupro_variant in AUPRO_VARIANTS and adaclip_paper.models == ("adaclip",)
    assert PROTOCOLS.get("adaclip-paper") == adaclip_paper
    text = YAML.read_text()
    for evidence in ("pretrained_mvtec_colondb.pth", "pretrained_visa_clinicdb.pth", '"MVTec AD & ClinicDB"',
                     "pretrained_all.pth", "keeps the last one", "no AUPRO"):  # fmt: skip
        assert evidence in text, evidence


def test_each_paper_protocol_names_its_models():
    assert anomalyclip_paper.models == ("anomalyclip", "clip", "clip-ac", "winclip", "april-gan", "coop")
    assert default.models == () and Protocol(name="x").models == ()
    recorded = adaclip_paper.to_dict()  # what every result file records
    assert recorded["training"][0]["aux"] == "mvtec-ad+cvc-colondb" and recorded["models"] == ("adaclip",)
