"""What training and serving both need, below both of them: the tensors a feature file or a user's photo and
audio become (`tensors`), the generator's conditioning from them and a predicted motion (`inputs`), and the
model bundle that training writes and serving loads (`bundle`). Neither training nor serving is imported here."""
