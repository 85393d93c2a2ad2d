from __future__ import annotations

import pytest

from tests.models.contract import tiny_dataset


@pytest.fixture(scope="class")
def ds():
    return tiny_dataset()


@pytest.fixture(scope="class")
def fitted(request, ds):
    """The model of the test class (`make_model`), fitted once per class."""
    return request.cls().make_model().fit(ds)
