"""Text-to-image evaluation: GenEval scoring (+ Mask2Former/CLIP backends), HPSv3 through a
worker process, the CPU shapes world with its analytic detector, and T2I model loading."""
