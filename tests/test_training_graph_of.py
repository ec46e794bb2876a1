import pytest

import graphcore as gc
from golgi.training.data import graph_of, model_input


def test_graph_of_names_the_caller_for_a_node_of_no_graph():
    c = gc.NewConstant([[1.0, 2.0]])
    with pytest.raises(gc.GraphError, match="fit: .*belongs to no graph"):
        graph_of(c, "fit")


def test_model_input_on_a_constant_is_a_graph_error_not_an_attribute_error():
    c = gc.NewConstant([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(gc.GraphError, match="model input"):
        model_input(object(), c, None, None)
