"""French given and family names for synthetic people.

Given names are grouped by the era of birth because a French name says a lot about the decade it
was given in (a Ginette born in 2005 or a Maëlys born in 1935 would look fake). Family names are
among the most frequent in France, with a few regional and immigrant-origin ones.
"""

from __future__ import annotations


def _names(text: str) -> tuple[str, ...]:
    """Comma-separated names in a multi-line string (family names may contain spaces)."""
    names = (name.strip() for name in text.replace("\n", ",").split(","))
    return tuple(dict.fromkeys(name for name in names if name))


# Birth year bounds of each era; a birth year picks the first era whose bound it is below.
ERA_BOUNDS = (1950, 1980, 10_000)

FEMALE = (
    _names(
        """
        Marie, Jeanne, Germaine, Marguerite, Yvonne, Madeleine, Suzanne, Louise, Simone, Denise,
        Paulette, Odette, Lucienne, Andrée, Renée, Marcelle, Raymonde, Thérèse, Jacqueline,
        Colette, Yvette, Ginette, Georgette, Huguette, Juliette, Gisèle, Henriette, Berthe,
        Hélène, Geneviève, Lucie, Alice, Paule, Solange, Josette, Micheline, Jeannine, Monique,
        Éliane, Rolande, Gilberte, Fernande, Irène, Mauricette, Léone, Armande, Christiane,
        Françoise, Anne-Marie, Marie-Thérèse
        """
    ),
    _names(
        """
        Nathalie, Isabelle, Sylvie, Catherine, Martine, Christine, Valérie, Sandrine, Véronique,
        Patricia, Brigitte, Chantal, Dominique, Nicole, Anne, Corinne, Laurence, Florence,
        Pascale, Karine, Muriel, Fabienne, Évelyne, Béatrice, Agnès, Carole, Céline, Stéphanie,
        Virginie, Delphine, Sophie, Frédérique, Marie-Christine, Marie-Claude, Annie, Joëlle,
        Danielle, Michèle, Mireille, Nadine, Elisabeth, Hélène, Cécile, Claire, Estelle, Lydie,
        Murielle, Patricia, Régine, Sabine, Martine, Fatima, Nadia, Samia, Malika, Leïla
        """
    ),
    _names(
        """
        Emma, Léa, Chloé, Manon, Camille, Inès, Jade, Louise, Alice, Lina, Rose, Anna, Mila,
        Ambre, Julia, Léna, Zoé, Lola, Juliette, Lucie, Sarah, Clara, Laura, Pauline, Marine,
        Aurélie, Émilie, Élodie, Caroline, Mathilde, Charlotte, Margaux, Anaïs, Justine, Marion,
        Morgane, Laëtitia, Amandine, Adèle, Agathe, Margot, Victoire, Capucine, Apolline, Romane,
        Éva, Nina, Lou, Iris, Elsa, Lisa, Maëlys, Noémie, Gabrielle, Maëlle, Salomé, Océane,
        Yasmine, Amina, Sofia
        """
    ),
)

MALE = (
    _names(
        """
        Jean, Pierre, André, René, Louis, Marcel, Roger, Robert, Henri, Georges, Maurice,
        Raymond, Lucien, Paul, Joseph, Fernand, Albert, Émile, Gaston, Léon, Roland, Marius,
        Armand, Édouard, Eugène, Gilbert, Jacques, Michel, Claude, Bernard, Guy, Yves, Gérard,
        Daniel, Marc, Charles, Auguste, Félix, Raoul, Victor, Lucien, Abel, Alphonse, Camille,
        Clément, Gabriel, Julien, Norbert, René-Paul, Jean-Baptiste
        """
    ),
    _names(
        """
        Philippe, Alain, Patrick, Christian, Daniel, Bernard, Thierry, Éric, Pascal, Dominique,
        Laurent, Frédéric, Christophe, Didier, Olivier, Stéphane, Serge, Denis, Bruno, Hervé,
        Jean-Pierre, Jean-Claude, Jean-Luc, Jean-Marc, Jean-François, Jean-Michel, Francis,
        François, Gilles, Joël, Lionel, Franck, Fabrice, Vincent, Marc, Patrice, Régis, Xavier,
        Yannick, Jérôme, David, Sébastien, Nicolas, Thomas, Cédric, Ludovic, Arnaud, Benoît,
        Karim, Mohamed, Rachid, Ahmed, Samir, Mustapha, Rémi, Roland
        """
    ),
    _names(
        """
        Gabriel, Léo, Raphaël, Arthur, Louis, Jules, Adam, Maël, Lucas, Hugo, Nathan, Ethan,
        Paul, Noah, Sacha, Tom, Théo, Timéo, Enzo, Mathis, Baptiste, Clément, Valentin, Victor,
        Martin, Axel, Samuel, Simon, Benjamin, Adrien, Loïc, Yann, Erwan, Gaël, Tristan,
        Bastien, Corentin, Dylan, Florian, Kevin, Anthony, Quentin, Maxime, Guillaume, Romain,
        Alexandre, Antoine, Mathieu, Thibault, Julien, Aurélien, Mehdi, Youssef, Bilal, Ilyes,
        Noé, Aaron
        """
    ),
)

FAMILY = _names(
    """
    Martin, Bernard, Thomas, Petit, Robert, Richard, Durand, Dubois, Moreau, Laurent, Simon,
    Michel, Lefebvre, Leroy, Roux, David, Bertrand, Morel, Fournier, Girard, Bonnet, Dupont,
    Lambert, Fontaine, Rousseau, Vincent, Muller, Lefèvre, Faure, André, Mercier, Blanc, Guérin,
    Boyer, Garnier, Chevalier, François, Legrand, Gauthier, Garcia, Perrin, Robin, Clément, Morin,
    Nicolas, Henry, Roussel, Mathieu, Gautier, Masson, Marchand, Duval, Denis, Dumont, Marie,
    Lemaire, Noël, Meyer, Dufour, Meunier, Brun, Blanchard, Giraud, Joly, Rivière, Lucas, Brunet,
    Gaillard, Barbier, Arnaud, Martinez, Gérard, Roche, Renard, Schmitt, Roy, Leroux, Colin,
    Vidal, Caron, Picard, Roger, Fabre, Aubert, Lemoine, Renaud, Dumas, Lacroix, Olivier,
    Philippe, Bourgeois, Pierre, Benoît, Rey, Leclerc, Payet, Rolland, Leclercq, Guillaume,
    Lecomte, Lopez, Jean, Dupuy, Guillot, Hubert, Berger, Carpentier, Sanchez, Dupuis, Moulin,
    Louis, Deschamps, Huet, Vasseur, Perez, Boucher, Fleury, Royer, Klein, Jacquet, Adam, Paris,
    Poirier, Marty, Aubry, Guyot, Carré, Charles, Renault, Charpentier, Ménard, Maillard, Baron,
    Bertin, Bailly, Hervé, Schneider, Fernandez, Le Gall, Collet, Léger, Bouvier, Julien,
    Prévost, Millet, Perrot, Daniel, Le Roux, Cousin, Germain, Breton, Besson, Langlois, Rémy,
    Le Goff, Pelletier, Lévêque, Perrier, Leblanc, Barré, Lebrun, Marchal, Weber, Mallet, Hamon,
    Boulanger, Jacob, Monnier, Michaud, Rodriguez, Guichard, Gillet, Étienne, Grondin, Poulain,
    Tessier, Chevallier, Collin, Chauvin, Da Silva, Bouchet, Gay, Lemaître, Bénard, Maréchal,
    Humbert, Reynaud, Antoine, Hoarau, Perret, Barthélemy, Cordier, Pichon, Lejeune, Gilbert,
    Lamy, Delaunay, Pasquier, Carlier, Laporte, Gomez, Ferreira, Dos Santos, Pereira, Rodrigues,
    Le Corre, Le Bihan, Kerjean, Tanguy, Riou, Quéré, Jaouen, Le Floch, Guillou, Cadiou, Salaün,
    Etcheverry, Irigoyen, Bidegain, Lacoste, Labat, Dauphin, Bonnefoy, Sabatier, Castagné,
    Rouquette, Vergnes, Costes, Fabié, Ramon, Pujol, Puig, Ferrer, Bosc, Santoni, Paoli, Ottavi,
    Wagner, Hoffmann, Zimmermann, Keller, Fischer, Schwartz, Becker, Koenig, Hartmann, Kieffer,
    Nguyen, Tran, Pham, Benali, Haddad, Mansouri, Benoit, Cherif, Saïdi, Bensaïd, Traoré, Diallo,
    Diop, Ndiaye, Camara, Kowalski, Nowak, Popescu, Yilmaz, Rossi, Russo, Ferrari, Esposito,
    Bianchi, Romano, Colombo, Ricci, Marino, Greco, Bruno, Gallo, Conti, De Luca, Costa,
    Giordano, Mancini, Rizzo, Lombardi, Moretti, Barbe, Devaux, Chauvet, Tixier, Vial, Brunel,
    Marion, Bouchard, Mathis, Rigaud, Ollivier, Géraud, Besnard, Carpentier, Lecoq, Hébert,
    Lemonnier, Leconte, Levasseur, Lepage, Toussaint, Delmas, Delattre, Dujardin, Delorme
    """
)
