"""`sample_data`: render the sample corpus to data/01_raw/sample, then a contact sheet of it."""

from kedro.pipeline import Pipeline, node, pipeline

from talking_face.pipelines.sample_data.nodes import draw_contact_sheet, generate_sample_clips


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(generate_sample_clips, inputs="params:sample_data", outputs="sample_clips", name="generate_sample_clips"),
            node(
                draw_contact_sheet,
                inputs=["sample_clips", "params:sample_data"],
                outputs="sample_contact_sheet",
                name="draw_sample_contact_sheet",
            ),
        ]
    )
