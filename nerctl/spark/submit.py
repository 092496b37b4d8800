"""The file spark-submit runs: `nerctl spark`'s options, on spark-submit's master and settings.

    spark-submit --master yarn --deploy-mode client "$(python -m nerctl.spark.submit --path)" \
        'hdfs:///lake/docs/*.parquet' --column body --output hdfs:///lake/tagged --run /shared/runs/movie

An entry file, like __main__.py: it sits above the layers and calls the CLI.
"""
import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["--path"]:
        print(__file__)
        sys.exit(0)
    from nerctl.cli import main

    sys.argv = ["nerctl", "spark", *sys.argv[1:]]
    main()
