"""The main job, end to end, offline: train MLH on the MNIST-5k digits,
evaluate it, export the encoder (SavedModel + ONNX, validated against Keras),
and search the database with the exported encoder through onnxruntime and a
faiss Hamming index, as a deployment machine would.

    python examples/main_job.py                  # 32 bits, default recipe
    python examples/main_job.py --bits 64 --out runs/main64

Writes into `--out`: `model.keras`, `eval/` (report.json and PNG plots),
`export/` (saved_model/, model.onnx, metadata.json), `database.index` and
`search.json` (the top hits of the first queries).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/main", help="output folder")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--mode", default="mlh")
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: the package's recipe"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    import keras_mlh
    from keras_mlh.files import write_json
    from keras_mlh.training import default_training
    from keras_mlh_runtime import HashEncoder

    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    # 1. Train on the 4,000 database images; the 1,000 queries stay unseen.
    data = keras_mlh.datasets.mnist5k()
    model = keras_mlh.MLH(num_classes=data.num_classes, bits=args.bits, mode=args.mode)
    recipe = default_training(epochs=args.epochs, steps_per_epoch=len(data.train))
    model.compile(optimizer=recipe.optimizer)
    history = model.fit(data.train, epochs=recipe.epochs, verbose=2)
    model_path = os.path.join(args.out, "model.keras")
    model.save(model_path)

    # 2. Evaluate: Hamming ranking of the database for every query.
    query_codes = model.encode(data.x_query)
    database_codes = model.encode(data.x_database)
    report = keras_mlh.retrieval_report(
        query_codes,
        data.y_query,
        database_codes,
        data.y_database,
        out_dir=os.path.join(args.out, "eval"),
        history=history,
    )

    # 3. Export, validated on the real query images.
    export_dir = os.path.join(args.out, "export")
    metadata = keras_mlh.export_encoder(
        model, export_dir, sample_images=data.x_query, overwrite=True
    )

    # 4. Deploy: onnxruntime encodes, faiss searches (no TensorFlow needed).
    encoder = HashEncoder.load(export_dir)
    database_packed = encoder.encode(data.x_database)  # uint8, bits / 8 bytes
    index = encoder.build_index(packed=database_packed)
    index_path = os.path.join(args.out, "database.index")
    index.save(index_path)
    distances, ids = encoder.search(data.x_query, index, k=10)
    onnx_map = keras_mlh.metrics.mean_average_precision(
        encoder.encode(data.x_query), data.y_query, database_packed, data.y_database
    )
    hits = data.y_database[ids] == data.y_query[:, None]
    search = {
        "k": 10,
        "precision_at_10": float(hits.mean()),
        "map_onnx_codes": onnx_map,
        "examples": [
            {
                "query": i,
                "label": int(data.y_query[i]),
                "ids": ids[i].tolist(),
                "labels": data.y_database[ids[i]].tolist(),
                "distances": distances[i].tolist(),
            }
            for i in range(5)
        ],
    }
    search_path = write_json(search, os.path.join(args.out, "search.json"))

    onnx_check = metadata["validation"]["onnx"]
    print(
        f"\nmAP@all ({args.mode}, {args.bits} bits, 1,000 queries / 4,000 database): "
        f"{report['map']:.4f}   P@10: {report['precision_at_k']['10']:.4f}\n"
        f"model:   {model_path}\n"
        f"plots:   {', '.join(v for k, v in report['files'].items() if k != 'report')}\n"
        f"report:  {report['files']['report']}\n"
        f"export:  {export_dir} (ONNX bits equal to Keras: "
        f"{100 * onnx_check['bit_agreement']:.2f}%, max |diff| "
        f"{onnx_check['max_abs_diff']:.1e})\n"
        f"search:  {search_path} (onnxruntime + faiss: P@10 {search['precision_at_10']:.4f}, "
        f"mAP {onnx_map:.4f}; index {index_path}, {len(index)} codes)\n"
        f"time:    {time.perf_counter() - start:.0f} s"
    )
    return report


if __name__ == "__main__":
    main()
