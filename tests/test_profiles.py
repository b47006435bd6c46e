"""Profiles: one source of truth, TLCNN_PROFILE wins, unknown names are clear errors."""

import nbformat
import pytest
from course_notebooks import course_notebooks

from tlcnn_helpers.errors import ProfileError, TLCNNError
from tlcnn_helpers.settings import PROFILES, get_profile, resolve_profile


def test_three_profiles_with_their_data_sources():
    assert list(PROFILES) == ["smoke", "teach", "paper"]
    assert get_profile("smoke").is_synthetic
    assert not get_profile("teach").is_synthetic and not get_profile("paper").is_synthetic
    assert get_profile("paper").cifar.paper_epochs == 30  # the paper's own setting


def test_smoke_budgets_are_the_smallest():
    smoke, teach, paper = (get_profile(n) for n in ("smoke", "teach", "paper"))
    for section in ("cifar", "tuning", "transfer"):
        for field, value in vars(getattr(smoke, section)).items():
            if isinstance(value, int) and "batch" not in field and "per_class" not in field:
                assert value <= getattr(getattr(teach, section), field) <= \
                    getattr(getattr(paper, section), field), f"{section}.{field}"


def test_environment_variable_overrides_the_notebook_value():
    assert resolve_profile("teach", environ={"TLCNN_PROFILE": "smoke"}).name == "smoke"
    assert resolve_profile("paper", environ={}).name == "paper"
    assert resolve_profile(" Teach ", environ={"TLCNN_PROFILE": ""}).name == "teach"


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ProfileError) as info:
        resolve_profile("teach", environ={"TLCNN_PROFILE": "fast"})
    message = str(info.value)
    assert "'fast'" in message and "smoke, teach, paper" in message and "TLCNN_PROFILE" in message
    assert isinstance(info.value, TLCNNError)


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.stem)
def test_every_notebook_has_a_papermill_parameters_cell_set_to_teach(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    assert tagged[0].source.splitlines()[0].startswith('PROFILE = "teach"')
