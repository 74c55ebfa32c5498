"""One build recipe per served model (`trendflow models build`): where its weights come from and
how each variant is checked. Recipes import their source packages lazily: torch and the model
packages are build-time dependencies (the `models` extra), not needed by components or client.
"""

from trendflow.serving.recipes.speech_text import SpeechActivityRecipe, SpeechToTextRecipe, TextEncoderRecipe
from trendflow.serving.recipes.vision import FaceDetectorRecipe, ImageEncoderRecipe, NsfwRecipe, OcrRecipe

RECIPES: dict[str, type] = {
    recipe.model_name: recipe
    for recipe in (
        ImageEncoderRecipe,
        TextEncoderRecipe,
        SpeechActivityRecipe,
        NsfwRecipe,
        FaceDetectorRecipe,
        OcrRecipe,
        SpeechToTextRecipe,
    )
}
