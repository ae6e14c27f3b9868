"""``daskfit predict`` (batch scoring, out of core) and ``daskfit plan`` (no fitting)."""

from __future__ import annotations

from pathlib import Path

from ._exit import DataProblem, InputMissing, UsageProblem

__all__ = ["load_for_predict", "model_directory", "plan_run", "predict"]


def _read_any(url, storage_options=None):
    from ._input import open_table

    return open_table(url, storage_options)


def model_directory(path):
    """The model directory ``path`` names: a run directory (``runs/NAME-ID``) means the
    ``model/`` inside it."""
    path = Path(path)
    if not (path / "model.json").exists() and (path / "model" / "model.json").exists():
        return path / "model"
    return path


def load_for_predict(model_path, proba=False):
    """The :class:`~daskfit.io.TabularModel` at ``model_path`` (a run directory or its
    ``model/``), checked against the options before any cluster is started."""
    from .. import load
    from ..io import ModelFormatError, TabularModel

    model_path = model_directory(model_path)
    if not Path(model_path).exists():
        raise InputMissing(f"No model at {model_path}.")
    try:
        model = load(model_path)
    except FileNotFoundError as exc:
        raise InputMissing(str(exc)) from None
    except ModelFormatError as exc:
        raise DataProblem(str(exc)) from None
    if not isinstance(model, TabularModel):
        raise DataProblem(f"{model_path} holds a bare {type(model).__name__}; daskfit predict "
                          "needs a model written by daskfit run (it knows the columns).")
    if proba and not hasattr(model.estimator, "predict_proba"):
        raise UsageProblem(f"--proba needs a classifier; {model_path} holds a "
                           f"{type(model.estimator).__name__}, which predicts values, not class "
                           "probabilities. Drop --proba.")
    return model


def predict(model_path, input_url, output_url, *, keep=(), proba=False, client=None,
            progress=True, storage_options=None):
    """Score ``input_url`` with a saved model; write Parquet to ``output_url``.

    Each partition is read, encoded and scored by one task
    (``daskfit-predict-partition``) and written straight out, so the input
    never has to fit in memory. Output columns: the ``keep`` columns, then
    ``prediction`` (and ``proba_<class>`` with ``proba=True``).

    ``model_path`` is a path (see :func:`load_for_predict`) or the model itself.

    Returns
    -------
    n_partitions : int
    """
    model = model_path if hasattr(model_path, "predict_frame") else load_for_predict(
        model_path, proba)
    frame = _read_any(input_url, storage_options)
    needed = model.encoder.numeric_ + model.encoder.categorical_ + list(keep)
    needed += [model.offset] if getattr(model, "offset", None) else []
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataProblem(f"{input_url} lacks the columns {missing} the model needs; it has "
                          f"{list(frame.columns)}.")
    try:
        preds = model.predict_frame(frame, proba=proba)
    except ValueError as exc:
        raise DataProblem(str(exc)) from None
    for i, c in enumerate(keep):
        preds = preds.assign(**{c: frame[c]})
    preds = preds[list(keep) + [c for c in preds.columns if c not in keep]]
    write = preds.to_parquet(output_url, write_index=False, compute=False,
                             storage_options=storage_options)
    try:
        if client is not None:
            future = client.compute(write)
            if progress:
                from distributed import progress as show

                show(future)
            future.result()
        else:
            write.compute()
    except ValueError as exc:
        raise DataProblem(f"Bad data while scoring {input_url}: {exc}") from exc
    return preds.npartitions


def plan_run(config_path, *, scheduler=None, echo=print):
    """Print the planner's choice for a configuration: reads the data once, fits nothing.

    The pass finds the categories (so the number of encoded features) and the
    partition lengths (so the shape and chunks the planner reasons about).
    """
    from .. import plan
    from ..io import FrameEncoder
    from ._checks import check_solver_options
    from ._config import load_config
    from ._input import find_input, read_table
    from ._run import input_columns, data_errors, build_model, connect_cluster

    config = load_config(config_path)
    estimator = build_model(config)
    check_solver_options(config, estimator)
    source = find_input(config)
    frame = read_table(config, source)
    features = input_columns(config, frame)
    client, cluster = connect_cluster(config, scheduler)
    try:
        # daskfit.connect printed the dashboard link.
        with data_errors("reading and encoding"):
            encoder = FrameEncoder(categorical=config["data"]["categorical"]).fit(frame[features])
            X = encoder.transform(frame[features]).to_dask_array(
                lengths=encoder._partition_rows)
        result = plan(X, estimator=estimator, client=client)
        echo(f"input: {source.url} ({source.format}, {len(source.files)} files, "
             f"{source.nbytes / 2**20:.1f} MiB), {encoder.n_rows_} rows, "
             f"{X.shape[1]} encoded features")
        echo(str(result))
        return result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
